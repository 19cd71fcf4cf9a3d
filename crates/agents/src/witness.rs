//! The witness log of an agent (crate `autonet-witness`), and how an agent without a
//! commit–reveal salt anchors its head on chain.

pub use autonet_witness::*;

/// Anchors `agent`'s head in its ERC-8004 registration for `task`
/// ([`autonet_witness::anchor_in_identity`]).
pub async fn anchor(agent: &crate::Agent, task: u64) -> Result<(), crate::AgentError> {
    let Some(id) = agent.identity_id() else {
        return Err(crate::AgentError::Other(
            "this agent has no ERC-8004 identity to anchor its witness log in".into(),
        ));
    };
    anchor_in_identity(
        &agent.witness,
        &agent.provider,
        agent.contracts.identity,
        id,
        Some(task),
        &agent.tx,
    )
    .await
    .map(|_| ())
    .map_err(crate::AgentError::Other)
}
