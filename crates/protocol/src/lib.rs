//! Protocol rules shared by every Autonet role and crate: the pure, I/O-free definitions that
//! must agree bit for bit with the contracts (hashing, Merkle commitments). Nothing here touches
//! the network, the disk or the chain.
#![warn(missing_docs)]

pub mod merkle;
