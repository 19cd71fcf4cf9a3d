//! The substrate as a task kind: the answers to the task-kind protocol
//! (`autonet_cartridge_sdk::kind`) that the substrate cartridge gives.
//!
//! - **State**: the events that grew the world from the seed ([`World::events`], canonical
//!   order, [`encode_events`]). The genesis state is the seed world: no events.
//! - **Contribute**: each of the solver's turns embedded ([`embed`]), replayed into the base
//!   world ([`World::observe`]): the events it adds.
//! - **Score**: the verifier ([`score`]): the held-out turns' gap before and after the
//!   contribution is replayed onto the base.
//! - **Reconcile** (a task is an epoch of two steps): a contribution's score first moves to its
//!   own gap reduction (`solo`), then to its marginal value in the world all valid contributions
//!   make together: the gap that world would regain without it (`marginal`). [`reconcile`] of
//!   `[solo, marginal]` gives **mint** (what a contribution still adds once everyone's is in; a
//!   contribution others duplicated keeps half its rise) and **novelty** (all its movement).
//! - **Merge**: the union of the contributions consensus paid ([`merge`]); one that does not
//!   apply is left out.

use autonet_cartridge_sdk::kind::{Op, Request, encode_u64s, reply};

use crate::embed::embed;
use crate::{
    Event, Observation, Reader, SubstrateError, World, encode_events, merge, reconcile, score,
};

/// Answers one request (what the substrate cartridge's `autonet_run` does).
pub fn run(input: &[u8]) -> Vec<u8> {
    reply(Request::decode(input).and_then(|r| answer(&r)))
}

fn answer(r: &Request<'_>) -> Result<Vec<u8>, String> {
    let text = |e: SubstrateError| e.to_string();
    match r.op {
        Op::Genesis => {
            let mut out = Vec::new();
            encode_events(&[], &mut out);
            Ok(out)
        }
        Op::Contribute => {
            let mut world = state(r.state)?;
            let events = world.observe(&observations(&r.turns)?);
            let mut out = Vec::new();
            encode_events(&events, &mut out);
            Ok(out)
        }
        Op::Score => {
            let base = state(r.state)?;
            let [item] = r.items.as_slice() else {
                return Err(format!(
                    "score takes one contribution, got {}",
                    r.items.len()
                ));
            };
            let s = score(&base, &events(item)?, &observations(&r.turns)?).map_err(text)?;
            Ok(encode_u64s(&[s.gap_before, s.gap_after]))
        }
        Op::Reconcile => {
            let base = state(r.state)?;
            let held = observations(&r.turns)?;
            let streams: Vec<Option<Vec<Event>>> = r
                .items
                .iter()
                .map(|b| {
                    let e = events(b).ok()?;
                    base.clone().apply_all(&e).ok()?;
                    Some(e)
                })
                .collect();
            let valid: Vec<Vec<Event>> = streams.iter().flatten().cloned().collect();
            let (all, _) = merge(&base, &valid);
            let gap_all = all.gap(&held);
            let before = base.gap(&held);
            let mut out = Vec::with_capacity(streams.len());
            for (i, s) in streams.iter().enumerate() {
                let Some(mine) = s else {
                    out.extend([0, 0]);
                    continue;
                };
                let mut alone = base.clone();
                alone.apply_all(mine).map_err(text)?;
                let solo = before.saturating_sub(alone.gap(&held));
                let others: Vec<Vec<Event>> = streams
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .filter_map(|(_, s)| s.clone())
                    .collect();
                let marginal = merge(&base, &others).0.gap(&held).saturating_sub(gap_all);
                let r = reconcile(&[solo as i64, marginal as i64]);
                out.extend([r.mint, r.novelty]);
            }
            Ok(encode_u64s(&out))
        }
        Op::Merge => {
            let base = state(r.state)?;
            let streams = r
                .items
                .iter()
                .map(|b| events(b))
                .collect::<Result<Vec<_>, _>>()?;
            let (world, _) = merge(&base, &streams);
            let mut out = Vec::new();
            encode_events(&world.events(), &mut out);
            Ok(out)
        }
    }
}

fn events(bytes: &[u8]) -> Result<Vec<Event>, String> {
    let mut r = Reader(bytes);
    let events = r.events().map_err(|e| e.to_string())?;
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the events", r.0.len()));
    }
    Ok(events)
}

/// The world a state's events grow from the seed.
pub fn state(bytes: &[u8]) -> Result<World, String> {
    let mut world = World::seed();
    world
        .apply_all(&events(bytes)?)
        .map_err(|e| format!("the state does not apply to the seed world: {e}"))?;
    Ok(world)
}

fn observations(turns: &[&[u8]]) -> Result<Vec<Observation>, String> {
    turns
        .iter()
        .map(|t| {
            std::str::from_utf8(t)
                .map(embed)
                .map_err(|_| "a turn is not UTF-8".to_string())
        })
        .collect()
}
