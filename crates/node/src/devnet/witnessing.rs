//! The devnet's last check: every agent's (and the inference node's) witness log (`autonet_agents::witness`) verifies —
//! hash chain, seals, anchors — and every anchor transaction is on chain, sent by the agent and
//! carrying the anchored value (what `autonet witness verify` does).

use autonet_agents::witness;
use serde_json::{Value, json};

use super::network::{Network, NetworkError};

/// Verifies the log of every agent that ran; the summary's text and JSON.
pub async fn verify_all(net: &Network) -> Result<(String, Value), NetworkError> {
    let mut text = String::from("\n  witness logs (autonet witness verify):\n");
    let mut rows = Vec::new();
    for agent in net.agents.values() {
        let path = agent.state_dir.join(witness::FILE);
        if !path.exists() {
            continue;
        }
        let fail = |e: witness::WitnessError| {
            NetworkError::Other(format!("{}'s witness log: {e}", agent.name))
        };
        let v = witness::verify(&path).map_err(fail)?;
        let on_chain = witness::check_onchain(&net.provider, &v)
            .await
            .map_err(fail)?;
        if witness::owner(&v) != Some(agent.address()) {
            return Err(NetworkError::Other(format!(
                "{}'s witness log does not name its account {} as its owner",
                agent.name,
                agent.address()
            )));
        }
        let unanchored = witness::unanchored_tasks(&v);
        if !unanchored.is_empty() {
            return Err(NetworkError::Other(format!(
                "{}'s witness log anchors nothing for tasks {unanchored:?} it took part in",
                agent.name
            )));
        }
        let tasks = v
            .entries
            .iter()
            .filter_map(|e| e.task)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        text.push_str(&format!(
            "    {:<22} {:>5} entries over {tasks} tasks, {} anchors checked on chain, {} still sealed\n",
            agent.name,
            v.entries.len(),
            on_chain,
            v.sealed.len()
        ));
        rows.push(json!({
            "agent": agent.name,
            "entries": v.entries.len(),
            "anchors_on_chain": on_chain,
            "sealed": v.sealed.len(),
            "head": v.entries.last().map(|e| e.hash.to_string()),
        }));
    }
    if rows.is_empty() {
        return Err(NetworkError::Other("no agent kept a witness log".into()));
    }
    Ok((text, json!(rows)))
}
