//! The project's training spec (crate `autonet-spec`) and the per-task rules of
//! `autonet-protocol` that the roles derive with it, under one path.

pub use autonet_protocol::scores::{Originality, scores_from_losses, task_scores};
pub use autonet_protocol::task::{eval_seed, seed_of, task_spec_hash, train_seed};
pub use autonet_spec::*;
