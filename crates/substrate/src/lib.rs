//! The world-model substrate: not a neural network but a deterministic, content-addressed tree of
//! sub-claims over the charter space, whose four axes are the charter's tendencies
//! ([`AXES`]). Everything is integer arithmetic (coordinates in fixed point, [`SCALE`]), so a
//! world, a score and a reconciliation are the same bytes on every machine, natively and inside
//! a cartridge.
//!
//! - An [`Observation`] is one agent turn as a point of `[-1, 1]⁴` (fixed point), from the
//!   deterministic embedder [`embed::embed`] (word lexicons per axis) or any other.
//! - Under each axis the observation takes a stance (`Pro` when its coordinate on that axis is
//!   ≥ 0, else `Con`) and a path of cells, one per depth `1..=MAX_DEPTH`: at depth `d` the space is
//!   cut into a grid of `2^d` cells per coordinate. Each cell of the path is a sub-claim
//!   ([`Claim`]) whose parent is the cell above it (the axis's root claim at depth 0).
//! - A sub-claim's id is the keccak256 of its content (parent, axis, stance, depth, cell): two
//!   solvers that sprout the same sub-claim sprout the same id, and their worlds converge.
//! - A solver turns observations into [`Event`]s (`SubClaimSprouted` for each claim its world
//!   lacked, `ObservationAdded` for each claim on the path) with [`World::observe`]. A world is
//!   a set (claims, and per claim the observations it holds), so applying event streams is a
//!   union: order and repetition do not matter, and [`merge`] is what the aggregator does.
//! - The **gap** of a world on held-out observations ([`World::gap`]): for each observation and
//!   axis, the L1 distance from the observation to the nearest observation the world holds in the
//!   claims on its path (the origin's distance when it holds none there). The verifier replays a
//!   contribution onto the seed world and scores the gap it removes ([`score`]).
//! - At an epoch boundary each contributor's score series is reconciled ([`reconcile`]) into
//!   **novelty** (all movement, reversions included; diagnostic) and **mint** (rewarded: rises
//!   that land positive, weighted by the share of the rest of the epoch they survived).

pub mod align;
pub mod embed;
pub mod kind;

use std::collections::{BTreeMap, BTreeSet};

use tiny_keccak::{Hasher, Keccak};

/// The charter's tendencies, the axes of the space.
pub const AXES: [&str; 4] = [
    "life_precious",
    "self_preservation",
    "promotion_of_intelligence",
    "evolution",
];

/// Fixed point: a coordinate of 1.0 is `SCALE`.
pub const SCALE: i32 = 1_000_000;

/// Depth of the deepest sub-claims (cells of `2^MAX_DEPTH` per coordinate).
pub const MAX_DEPTH: u8 = 4;

/// A keccak256.
pub type Hash = [u8; 32];

fn keccak(parts: &[&[u8]]) -> Hash {
    let mut k = Keccak::v256();
    for p in parts {
        k.update(p);
    }
    let mut out = [0; 32];
    k.finalize(&mut out);
    out
}

/// Why events or inputs were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstrateError {
    /// A coordinate outside `[-SCALE, SCALE]`.
    OutOfRange(i32),
    /// A sub-claim whose id is not the hash of its content.
    ClaimId,
    /// A sub-claim whose parent the world does not hold.
    NoParent,
    /// An observation added to a claim the world does not hold.
    NoClaim,
    /// An observation added to a claim whose cell does not contain it.
    NotInCell,
    /// Bytes that do not decode.
    Decode(&'static str),
}

impl std::fmt::Display for SubstrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfRange(c) => write!(f, "coordinate {c} outside [-{SCALE}, {SCALE}]"),
            Self::ClaimId => write!(f, "a sub-claim's id is not the hash of its content"),
            Self::NoParent => write!(f, "a sub-claim sprouts under a parent the world lacks"),
            Self::NoClaim => write!(f, "an observation is added to a claim the world lacks"),
            Self::NotInCell => write!(
                f,
                "an observation is added to a claim whose cell excludes it"
            ),
            Self::Decode(what) => write!(f, "malformed {what}"),
        }
    }
}

impl std::error::Error for SubstrateError {}

/// One agent turn as a point of the charter space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Observation {
    /// Fixed-point coordinates, one per axis of [`AXES`], each in `[-SCALE, SCALE]`.
    pub coords: [i32; 4],
}

impl Observation {
    /// Checks the range.
    pub fn new(coords: [i32; 4]) -> Result<Self, SubstrateError> {
        for c in coords {
            if !(-SCALE..=SCALE).contains(&c) {
                return Err(SubstrateError::OutOfRange(c));
            }
        }
        Ok(Self { coords })
    }

    /// Its content hash.
    pub fn hash(&self) -> Hash {
        keccak(&[b"obs", &le(&self.coords)])
    }
}

fn le(v: &[i32; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    for (i, c) in v.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&c.to_le_bytes());
    }
    out
}

/// A sub-claim's stance on its axis's thesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stance {
    /// The observation's coordinate on the axis is ≥ 0.
    Pro,
    /// It is < 0.
    Con,
}

/// A sub-claim: a cell of the charter space under one axis, with a stance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    /// The claim it refines (the axis's root at depth 1).
    pub parent: Hash,
    /// Index into [`AXES`].
    pub axis: u8,
    /// Its stance.
    pub stance: Stance,
    /// `1..=MAX_DEPTH`.
    pub depth: u8,
    /// The cell: per coordinate, its index in `0..2^depth`.
    pub cell: [i32; 4],
}

impl Claim {
    /// Its id: the hash of its content.
    pub fn id(&self) -> Hash {
        keccak(&[
            b"claim",
            &self.parent,
            &[self.axis, self.stance as u8, self.depth],
            &le(&self.cell),
        ])
    }
}

/// The root claim of axis `axis` (depth 0; every world holds the four).
pub fn axis_root(axis: u8) -> Hash {
    keccak(&[b"axis", &[axis]])
}

/// The cell holding coordinate `c` at `depth`.
fn cell_of(c: i32, depth: u8) -> i32 {
    let cells = 1i64 << depth;
    (((i64::from(c) + i64::from(SCALE)) * cells / (2 * i64::from(SCALE) + 1)) as i32)
        .min(cells as i32 - 1)
}

/// The path of `o` under `axis`: its claims at depths `1..=MAX_DEPTH`, each with its parent.
fn path(o: &Observation, axis: u8) -> Vec<Claim> {
    let stance = if o.coords[axis as usize] >= 0 {
        Stance::Pro
    } else {
        Stance::Con
    };
    let mut parent = axis_root(axis);
    (1..=MAX_DEPTH)
        .map(|depth| {
            let claim = Claim {
                parent,
                axis,
                stance,
                depth,
                cell: o.coords.map(|c| cell_of(c, depth)),
            };
            parent = claim.id();
            claim
        })
        .collect()
}

/// A change to a world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// A new sub-claim (its id is the hash of `claim`).
    SubClaimSprouted {
        /// Its id.
        id: Hash,
        /// Its content.
        claim: Claim,
    },
    /// An observation joins a claim.
    ObservationAdded {
        /// The claim.
        claim: Hash,
        /// The observation.
        observation: Observation,
    },
}

/// What a world holds about one claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Node {
    claim: Option<Claim>,
    observations: BTreeSet<Observation>,
}

/// A world: the sub-claims grown so far and the observations each holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct World {
    nodes: BTreeMap<Hash, Node>,
}

impl World {
    /// The seed world: the four axis roots, nothing observed.
    pub fn seed() -> Self {
        let mut w = Self::default();
        for a in 0..AXES.len() as u8 {
            w.nodes.insert(axis_root(a), Node::default());
        }
        w
    }

    /// Sub-claims held (the axis roots included).
    pub fn claims(&self) -> usize {
        self.nodes.len()
    }

    /// Applies one event; `Ok(false)` when the world already held it.
    pub fn apply(&mut self, e: &Event) -> Result<bool, SubstrateError> {
        match e {
            Event::SubClaimSprouted { id, claim } => {
                if claim.id() != *id {
                    return Err(SubstrateError::ClaimId);
                }
                if !self.nodes.contains_key(&claim.parent) {
                    return Err(SubstrateError::NoParent);
                }
                if self.nodes.contains_key(id) {
                    return Ok(false);
                }
                self.nodes.insert(
                    *id,
                    Node {
                        claim: Some(*claim),
                        ..Node::default()
                    },
                );
                Ok(true)
            }
            Event::ObservationAdded { claim, observation } => {
                Observation::new(observation.coords)?;
                let node = self.nodes.get_mut(claim).ok_or(SubstrateError::NoClaim)?;
                if let Some(c) = &node.claim
                    && observation.coords.map(|x| cell_of(x, c.depth)) != c.cell
                {
                    return Err(SubstrateError::NotInCell);
                }
                Ok(node.observations.insert(*observation))
            }
        }
    }

    /// Applies `events` in their canonical order (sub-claims by depth, then observations), all
    /// or nothing: on an error the world is unchanged.
    pub fn apply_all(&mut self, events: &[Event]) -> Result<usize, SubstrateError> {
        let mut next = self.clone();
        let mut changed = 0;
        for e in canonical(events) {
            changed += usize::from(next.apply(&e)?);
        }
        *self = next;
        Ok(changed)
    }

    /// A solver's replay: the events that add `observations` to this world (applied to it).
    pub fn observe(&mut self, observations: &[Observation]) -> Vec<Event> {
        let mut events = Vec::new();
        for o in observations {
            for axis in 0..AXES.len() as u8 {
                for claim in path(o, axis) {
                    let id = claim.id();
                    for e in [
                        Event::SubClaimSprouted { id, claim },
                        Event::ObservationAdded {
                            claim: id,
                            observation: *o,
                        },
                    ] {
                        if self.apply(&e) == Ok(true) {
                            events.push(e);
                        }
                    }
                }
            }
        }
        events
    }

    /// The events that grow this world from the seed, in canonical order (its encoding as a
    /// state: the same world gives the same events).
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        for (id, n) in &self.nodes {
            if let Some(claim) = n.claim {
                out.push(Event::SubClaimSprouted { id: *id, claim });
            }
            for o in &n.observations {
                out.push(Event::ObservationAdded {
                    claim: *id,
                    observation: *o,
                });
            }
        }
        canonical(&out)
    }

    /// The world's content hash: every claim with the observations it holds, in id order.
    pub fn root(&self) -> Hash {
        let mut k = Keccak::v256();
        for (id, n) in &self.nodes {
            k.update(id);
            k.update(&(n.observations.len() as u64).to_le_bytes());
            for o in &n.observations {
                k.update(&le(&o.coords));
            }
        }
        let mut out = [0; 32];
        k.finalize(&mut out);
        out
    }

    /// The gap on `held_out`: for each held-out observation and axis, the L1 distance (fixed
    /// point) to the nearest observation the world holds in the claims on its path (the origin's
    /// distance when it holds none there). Adding observations never raises it.
    pub fn gap(&self, held_out: &[Observation]) -> u64 {
        let l1 = |a: &Observation, b: &Observation| -> u64 {
            a.coords
                .iter()
                .zip(b.coords)
                .map(|(&x, y)| (i64::from(x) - i64::from(y)).unsigned_abs())
                .sum()
        };
        let origin = Observation { coords: [0; 4] };
        let mut gap = 0u64;
        for o in held_out {
            for axis in 0..AXES.len() as u8 {
                let mut best = l1(o, &origin);
                // Every claim on the path holds a subset of its parent's observations: the
                // shallowest one the world holds has them all.
                if let Some(n) = path(o, axis).first().and_then(|c| self.nodes.get(&c.id())) {
                    for held in &n.observations {
                        best = best.min(l1(o, held));
                    }
                }
                gap += best;
            }
        }
        gap
    }
}

/// `events` in the order that applies them: sub-claims by depth (parents first), then
/// observations; within each, by content.
pub fn canonical(events: &[Event]) -> Vec<Event> {
    let mut out = events.to_vec();
    out.sort_by_key(|e| match e {
        Event::SubClaimSprouted { claim, .. } => (0u8, claim.depth, *e),
        Event::ObservationAdded { .. } => (1, 0, *e),
    });
    out.dedup();
    out
}

/// The aggregator's merge: every contribution's events applied to `base` (a union: the result
/// does not depend on their order). A contribution that does not apply is left out; its index is
/// returned.
pub fn merge(base: &World, contributions: &[Vec<Event>]) -> (World, Vec<usize>) {
    let mut world = base.clone();
    let mut refused = Vec::new();
    for (i, events) in contributions.iter().enumerate() {
        if world.apply_all(events).is_err() {
            refused.push(i);
        }
    }
    (world, refused)
}

/// What the verifier computes for a contribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Score {
    /// Gap of the seed world on the held-out observations.
    pub gap_before: u64,
    /// Gap once the contribution is applied.
    pub gap_after: u64,
    /// Root of the world with the contribution.
    pub root: Hash,
}

impl Score {
    /// The gap removed (0 when it grew).
    pub fn reduction(&self) -> u64 {
        self.gap_before.saturating_sub(self.gap_after)
    }
}

/// The verifier: replays `events` onto `seed` and measures the gap on `held_out`.
pub fn score(
    seed: &World,
    events: &[Event],
    held_out: &[Observation],
) -> Result<Score, SubstrateError> {
    let mut world = seed.clone();
    world.apply_all(events)?;
    Ok(Score {
        gap_before: seed.gap(held_out),
        gap_after: world.gap(held_out),
        root: world.root(),
    })
}

/// One contributor's epoch, reconciled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// The sum of the absolute score moves, reversions included (diagnostic).
    pub novelty: u64,
    /// The rewarded part: each rise that lands on a positive score, times the share of the rest
    /// of the epoch during which the score stayed at or above where the rise took it.
    pub mint: u64,
}

/// Reconciles a score series (one score per round of the epoch, starting from 0 before the
/// first) into novelty and mint.
pub fn reconcile(scores: &[i64]) -> Reconciled {
    let rounds = scores.len();
    let mut out = Reconciled::default();
    let mut previous = 0i64;
    for (t, &s) in scores.iter().enumerate() {
        let step = s - previous;
        out.novelty += step.unsigned_abs();
        if step > 0 && s > 0 {
            let rest = rounds - t;
            let survived = scores[t..].iter().filter(|&&later| later >= s).count();
            out.mint += (u128::from(step as u64) * survived as u128 / rest as u128) as u64;
        }
        previous = s;
    }
    out
}

// ------------------------------------------------------------------ encoding (cartridge input)

/// Appends `events` (count, then 1 + 117 or 1 + 48 bytes each).
pub fn encode_events(events: &[Event], out: &mut Vec<u8>) {
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        match e {
            Event::SubClaimSprouted { id, claim } => {
                out.push(0);
                out.extend_from_slice(id);
                out.extend_from_slice(&claim.parent);
                out.extend_from_slice(&[claim.axis, claim.stance as u8, claim.depth]);
                out.extend_from_slice(&le(&claim.cell));
            }
            Event::ObservationAdded { claim, observation } => {
                out.push(1);
                out.extend_from_slice(claim);
                out.extend_from_slice(&le(&observation.coords));
            }
        }
    }
}

/// Reads what [`encode_events`] writes.
pub struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], SubstrateError> {
        if self.0.len() < n {
            return Err(SubstrateError::Decode(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<usize, SubstrateError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")) as usize)
    }

    fn hash(&mut self, what: &'static str) -> Result<Hash, SubstrateError> {
        Ok(self.take(32, what)?.try_into().expect("32 bytes"))
    }

    fn coords(&mut self, what: &'static str) -> Result<[i32; 4], SubstrateError> {
        let b = self.take(16, what)?;
        Ok(std::array::from_fn(|i| {
            i32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"))
        }))
    }

    /// Events written by [`encode_events`].
    pub fn events(&mut self) -> Result<Vec<Event>, SubstrateError> {
        let n = self.u32("event count")?;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            out.push(match self.take(1, "event kind")?[0] {
                0 => {
                    let id = self.hash("claim id")?;
                    let parent = self.hash("claim parent")?;
                    let b = self.take(3, "claim axis")?;
                    let (axis, stance, depth) = (b[0], b[1], b[2]);
                    if axis as usize >= AXES.len() || stance > 1 || depth == 0 || depth > MAX_DEPTH
                    {
                        return Err(SubstrateError::Decode("claim"));
                    }
                    let stance = if stance == 0 {
                        Stance::Pro
                    } else {
                        Stance::Con
                    };
                    let cell = self.coords("claim cell")?;
                    Event::SubClaimSprouted {
                        id,
                        claim: Claim {
                            parent,
                            axis,
                            stance,
                            depth,
                            cell,
                        },
                    }
                }
                1 => Event::ObservationAdded {
                    claim: self.hash("observation claim")?,
                    observation: Observation::new(self.coords("observation")?)?,
                },
                _ => return Err(SubstrateError::Decode("event kind")),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
