//! Colony health Ψ: one number per round that says whether the collective is getting smarter,
//! `Ψ = (Intelligence × Sync × Diversity × Velocity)^¼`, each factor in [0, 1], computed from
//! what every node's status already holds (no new chain reads). Definitions (also in
//! `docs/agents.md`, "Colony health Ψ"), for round `r`:
//!
//! - **Intelligence** `I = clamp(1 − L_r / ln 256, 0, 1)`: the share of a byte's uniform entropy
//!   (ln 256 ≈ 5.545 nats, what an untrained byte model pays) that the model removed, with `L_r`
//!   the loss the status plots for the round (the held-out loss of its base model where this
//!   node evaluated it, else this node's training loss).
//! - **Sync** `S = c_r / C`: `c_r` coordinators paid a dividend in round `r`, out of the `C`
//!   coordinators paid a dividend in any round shown. Yuma pays dividends only through bonds
//!   earned by scoring with the consensus, so a coordinator that drops out of a round, or whose
//!   scores the consensus clips away, lowers it.
//! - **Diversity** `D = exp(H) / n`: the effective number of contributors over the solvers that
//!   revealed, with `H = −Σ pᵢ ln pᵢ` the entropy of the round's incentive shares `pᵢ`. 1 when every
//!   revealed delta counted equally; `1/n` when one solver carried the round; copies and idle
//!   solvers (scored 0) count as nothing.
//! - **Velocity** `V = 1 − exp(−v / V_REF)` with `v` the loss improvement from the previous point
//!   in nats/byte per hour of wall-clock time between the two rounds' proposals (`v ≤ 0` gives 0)
//!   and [`V_REF`] = 0.1 nats/byte/hour.
//!
//! A factor that cannot be computed (no loss, no payouts recorded yet, a first round) is `None`,
//! and so is Ψ then. A factor of 0 makes Ψ 0: a colony that stopped learning is not healthy,
//! however diverse.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{LossPoint, Round};

/// The improvement rate (nats/byte per hour) at which Velocity is `1 − 1/e` ≈ 0.63.
pub const V_REF: f64 = 0.1;

/// Ψ of one round and its four factors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiPoint {
    /// Round (task id).
    pub round: u64,
    /// When the round was proposed (unix seconds), where known.
    pub at: Option<u64>,
    /// Intelligence.
    pub intelligence: Option<f64>,
    /// Sync.
    pub sync: Option<f64>,
    /// Diversity.
    pub diversity: Option<f64>,
    /// Velocity.
    pub velocity: Option<f64>,
    /// `(I·S·D·V)^¼` when all four are known.
    pub psi: Option<f64>,
}

/// Ψ per round of `rounds` (oldest first) that has a point in `losses` (the status's loss
/// series, oldest first).
pub fn psi_series(rounds: &[Round], losses: &[LossPoint]) -> Vec<PsiPoint> {
    let coordinators: BTreeSet<String> = rounds.iter().flat_map(dividend_payees).collect();
    let mut out = Vec::with_capacity(losses.len());
    let mut previous: Option<&LossPoint> = None;
    for point in losses {
        let Some(round) = rounds.iter().find(|r| r.task_id == point.round) else {
            continue;
        };
        let intelligence =
            (point.loss.is_finite()).then(|| (1.0 - point.loss / 256f64.ln()).clamp(0.0, 1.0));
        let sync = (!coordinators.is_empty() && round.status == "finalized")
            .then(|| dividend_payees(round).count() as f64 / coordinators.len() as f64);
        let diversity = diversity(round);
        let velocity = previous.and_then(|p| velocity(p, point));
        let psi = match (intelligence, sync, diversity, velocity) {
            (Some(i), Some(s), Some(d), Some(v)) => Some((i * s * d * v).powf(0.25)),
            _ => None,
        };
        out.push(PsiPoint {
            round: point.round,
            at: point.at,
            intelligence,
            sync,
            diversity,
            velocity,
            psi,
        });
        previous = Some(point);
    }
    out
}

fn dividend_payees(r: &Round) -> impl Iterator<Item = String> + '_ {
    r.payouts
        .iter()
        .filter(|p| p.kind == "coordinator" && p.amount_atn != "0")
        .map(|p| p.address.to_ascii_lowercase())
}

/// `exp(H) / n` of the round's incentive shares; `None` before its consensus is known.
fn diversity(r: &Round) -> Option<f64> {
    let n = r.solvers.len();
    let shares: Vec<f64> = r
        .solvers
        .iter()
        .filter_map(|s| s.incentive)
        .filter(|p| p.is_finite() && *p > 0.0)
        .collect();
    let total: f64 = shares.iter().sum();
    if n == 0 || total <= 0.0 {
        return None;
    }
    let entropy: f64 = shares.iter().map(|p| p / total).map(|p| -p * p.ln()).sum();
    Some((entropy.exp() / n as f64).clamp(0.0, 1.0))
}

/// `1 − exp(−v / V_REF)` of the improvement from `a` to `b` per hour; `None` without both times
/// or with no time between them.
fn velocity(a: &LossPoint, b: &LossPoint) -> Option<f64> {
    let hours = (b.at? as f64 - a.at? as f64) / 3600.0;
    if hours <= 0.0 || !a.loss.is_finite() || !b.loss.is_finite() {
        return None;
    }
    let per_hour = (a.loss - b.loss) / hours;
    Some(if per_hour <= 0.0 {
        0.0
    } else {
        1.0 - (-per_hour / V_REF).exp()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Payout, SolverResult};

    fn round(id: u64, incentives: &[f64], dividends: &[&str]) -> Round {
        Round {
            task_id: id,
            status: "finalized".into(),
            proposed_at: Some(1_000 + id * 360),
            solvers: incentives
                .iter()
                .enumerate()
                .map(|(i, p)| SolverResult {
                    address: format!("0x{i}"),
                    incentive: Some(*p),
                    ..SolverResult::default()
                })
                .collect(),
            payouts: dividends
                .iter()
                .map(|a| Payout {
                    address: a.to_string(),
                    kind: "coordinator".into(),
                    amount_atn: "5".into(),
                })
                .collect(),
            ..Round::default()
        }
    }

    fn point(id: u64, loss: f64) -> LossPoint {
        LossPoint {
            round: id,
            loss,
            at: Some(1_000 + id * 360),
        }
    }

    #[test]
    fn each_factor_follows_its_definition() {
        let rounds = [
            round(1, &[0.5, 0.5], &["0xA", "0xB"]),
            round(2, &[1.0, 0.0, 0.0], &["0xa"]),
        ];
        // 0.1 h apart; the loss falls by 0.05 nats/byte: 0.5 per hour.
        let psi = psi_series(&rounds, &[point(1, 4.0), point(2, 3.95)]);
        assert_eq!(psi.len(), 2);
        let (a, b) = (psi[0], psi[1]);
        assert!((a.intelligence.unwrap() - (1.0 - 4.0 / 256f64.ln())).abs() < 1e-12);
        // Two coordinators in the window (addresses compared case-insensitively).
        assert_eq!(a.sync, Some(1.0));
        assert_eq!(b.sync, Some(0.5));
        // Equal shares: every solver counted; one solver of three carried round 2.
        assert!((a.diversity.unwrap() - 1.0).abs() < 1e-12);
        assert!((b.diversity.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // No previous point: no velocity, no Ψ; then 1 − e^(−5).
        assert_eq!(a.velocity, None);
        assert_eq!(a.psi, None);
        let v = 1.0 - (-0.5f64 / V_REF).exp();
        assert!((b.velocity.unwrap() - v).abs() < 1e-12);
        let expected = (b.intelligence.unwrap() * 0.5 * (1.0 / 3.0) * v).powf(0.25);
        assert!((b.psi.unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn a_colony_that_stops_learning_has_psi_zero_and_unknowns_stay_unknown() {
        let rounds = [round(1, &[1.0], &["0xa"]), round(2, &[1.0], &["0xa"])];
        let psi = psi_series(&rounds, &[point(1, 3.0), point(2, 3.1)]);
        assert_eq!(psi[1].velocity, Some(0.0));
        assert_eq!(psi[1].psi, Some(0.0));
        // An open round has no consensus yet; a loss above ln 256 is no intelligence.
        let mut open = round(3, &[], &[]);
        open.status = "open".into();
        let psi = psi_series(&[open], &[point(3, 6.0)]);
        assert_eq!(psi[0].intelligence, Some(0.0));
        assert_eq!(psi[0].sync, None);
        assert_eq!(psi[0].diversity, None);
        assert_eq!(psi[0].psi, None);
    }
}
