use super::*;

/// `n` observations around `center` (fixed point), from a small LCG seeded by `seed`.
fn cluster(seed: u64, n: usize, center: [i32; 4], spread: i32) -> Vec<Observation> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            Observation::new(center.map(|c| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let jitter = ((x >> 33) % (2 * spread as u64 + 1)) as i32 - spread;
                (c + jitter).clamp(-SCALE, SCALE)
            }))
            .unwrap()
        })
        .collect()
}

fn mixed(seed: u64, n: usize) -> Vec<Observation> {
    let centers = [
        [600_000, -200_000, 300_000, 100_000],
        [-500_000, 400_000, -100_000, 700_000],
        [100_000, 100_000, 800_000, -600_000],
    ];
    (0..n)
        .flat_map(|i| cluster(seed * 1000 + i as u64, 1, centers[i % 3], 250_000))
        .collect()
}

#[test]
fn two_solvers_given_the_same_observations_grow_the_same_world() {
    let obs = mixed(1, 60);
    let mut reversed = obs.clone();
    reversed.reverse();
    let (mut a, mut b) = (World::seed(), World::seed());
    let ea = a.observe(&obs);
    let eb = b.observe(&reversed);
    assert_eq!(a.root(), b.root());
    assert_eq!(canonical(&ea), canonical(&eb));
    // Replaying either stream onto the seed gives the same world again.
    let mut c = World::seed();
    c.apply_all(&eb).unwrap();
    assert_eq!(c.root(), a.root());
    // Applying a stream twice changes nothing.
    assert_eq!(c.apply_all(&ea).unwrap(), 0);
}

#[test]
fn merged_contributions_converge_on_shared_sub_claims_in_any_order() {
    let (x, y) = (mixed(2, 40), mixed(3, 40));
    let (mut a, mut b) = (World::seed(), World::seed());
    let (ea, eb) = (a.observe(&x), b.observe(&y));
    let (ab, refused) = merge(&World::seed(), &[ea.clone(), eb.clone()]);
    assert!(refused.is_empty());
    let (ba, _) = merge(&World::seed(), &[eb, ea]);
    assert_eq!(ab.root(), ba.root());
    // The same as one solver observing both.
    let mut both = World::seed();
    both.observe(&[x, y].concat());
    assert_eq!(ab.root(), both.root());
    // Shared sub-claims are one claim each: fewer claims than the two worlds hold apart.
    assert!(
        ab.claims() < a.claims() + b.claims() - 4,
        "{} {} {}",
        ab.claims(),
        a.claims(),
        b.claims()
    );
}

#[test]
fn the_gap_falls_round_over_round_as_solvers_observe() {
    let held_out = mixed(99, 30);
    let mut world = World::seed();
    let mut gaps = vec![world.gap(&held_out)];
    for round in 0..4u64 {
        // Three solvers, each with its own new observations.
        let contributions: Vec<Vec<Event>> = (0..3)
            .map(|s| world.clone().observe(&mixed(10 * round + s + 10, 15)))
            .collect();
        for c in &contributions {
            let s = score(&world, c, &held_out).unwrap();
            assert!(s.reduction() > 0 || round > 0, "round {round}: {s:?}");
        }
        let (merged, refused) = merge(&world, &contributions);
        assert!(refused.is_empty());
        world = merged;
        gaps.push(world.gap(&held_out));
    }
    println!("gap per round (seed first): {gaps:?}");
    assert!(gaps.windows(2).all(|w| w[1] < w[0]), "{gaps:?}");
}

#[test]
fn bad_events_are_refused_and_change_nothing() {
    let mut world = World::seed();
    let good = World::seed().observe(&mixed(4, 5));
    let root = world.root();
    // A forged id.
    let mut forged = good.clone();
    if let Some(Event::SubClaimSprouted { id, .. }) = forged
        .iter_mut()
        .find(|e| matches!(e, Event::SubClaimSprouted { .. }))
    {
        id[0] ^= 1;
    }
    assert_eq!(world.apply_all(&forged), Err(SubstrateError::ClaimId));
    assert_eq!(world.root(), root, "all or nothing");
    // An observation outside its claim's cell.
    let far = Observation::new([-SCALE, -SCALE, -SCALE, -SCALE]).unwrap();
    let mut moved = good.clone();
    if let Some(Event::ObservationAdded { observation, .. }) = moved
        .iter_mut()
        .rev()
        .find(|e| matches!(e, Event::ObservationAdded { .. }))
    {
        *observation = far;
    }
    assert_eq!(world.apply_all(&moved), Err(SubstrateError::NotInCell));
    // A sub-claim without its parent.
    let orphan: Vec<Event> = good
        .iter()
        .filter(|e| matches!(e, Event::SubClaimSprouted { claim, .. } if claim.depth == 2))
        .copied()
        .collect();
    assert_eq!(world.apply_all(&orphan), Err(SubstrateError::NoParent));
    assert_eq!(
        Observation::new([SCALE + 1, 0, 0, 0]),
        Err(SubstrateError::OutOfRange(SCALE + 1))
    );
    assert_eq!(world.root(), root);
}

#[test]
fn reconciliation_mints_only_rises_that_land_positive_and_survive() {
    // +10 (kept all epoch), +20 (reverted after one round), −10, 0.
    let r = reconcile(&[10, 30, 20, 20]);
    assert_eq!(r.novelty, 40);
    assert_eq!(r.mint, 10 + 20 / 3);
    // A CON contributor (scores below 0) mints nothing.
    assert_eq!(
        reconcile(&[-5, -10]),
        Reconciled {
            novelty: 10,
            mint: 0
        }
    );
    // A reverted move: all novelty, half its rise minted (it survived 1 of 2 rounds).
    assert_eq!(
        reconcile(&[0, 50, 0]),
        Reconciled {
            novelty: 100,
            mint: 25
        }
    );
    // A rise that lands below 0 mints nothing.
    assert_eq!(reconcile(&[-30, -10]).mint, 0);
    assert_eq!(reconcile(&[]), Reconciled::default());
}

#[test]
fn the_task_kind_answers_each_op_as_the_substrate_computes_it() {
    use crate::embed::{embed, generated_turns};
    use crate::kind::{run, state};
    use autonet_cartridge_sdk::kind::{Op, Request, decode_u64s, parse_reply};
    let turns = |seed, n| generated_turns(seed, n);
    let ask = |op, st: &[u8], t: &[String], items: &[&[u8]]| -> Result<Vec<u8>, String> {
        let mut r = Request::new(op);
        r.state = st;
        r.turns = t.iter().map(|t| t.as_bytes()).collect();
        r.items = items.to_vec();
        parse_reply(&run(&r.encode())).map(<[u8]>::to_vec)
    };
    let genesis = ask(Op::Genesis, &[], &[], &[]).unwrap();
    assert_eq!(state(&genesis).unwrap(), World::seed());
    let (a_turns, b_turns, held) = (turns(5, 12), turns(6, 12), turns(7, 8));
    let a = ask(Op::Contribute, &genesis, &a_turns, &[]).unwrap();
    let b = ask(Op::Contribute, &genesis, &b_turns, &[]).unwrap();
    // The contribution is what the world's replay of the embedded turns adds.
    let points = |t: &[String]| t.iter().map(|t| embed(t)).collect::<Vec<_>>();
    let mut enc = Vec::new();
    encode_events(&World::seed().observe(&points(&a_turns)), &mut enc);
    assert_eq!(a, enc);
    // Score: the verifier's gap before and after.
    let s = score(
        &World::seed(),
        &Reader(&a).events().unwrap(),
        &points(&held),
    )
    .unwrap();
    let got = decode_u64s(&ask(Op::Score, &genesis, &held, &[&a]).unwrap(), 2).unwrap();
    assert_eq!(got, [s.gap_before, s.gap_after]);
    assert!(s.reduction() > 0);
    // Merge: the union, as a state whose world has both.
    let next = ask(Op::Merge, &genesis, &[], &[&a, &b]).unwrap();
    let (both, refused) = merge(
        &World::seed(),
        &[Reader(&a).events().unwrap(), Reader(&b).events().unwrap()],
    );
    assert!(refused.is_empty());
    assert_eq!(state(&next).unwrap().root(), both.root());
    assert_eq!(ask(Op::Merge, &genesis, &[], &[&b, &a]).unwrap(), next);
    // Reconcile: a duplicate keeps half its rise; a garbage item earns nothing.
    let rec = decode_u64s(
        &ask(Op::Reconcile, &genesis, &held, &[&a, &a, b"junk"]).unwrap(),
        6,
    )
    .unwrap();
    let solo = s.reduction();
    assert_eq!(rec[..2], [solo / 2, solo + solo]);
    assert_eq!(rec[..2], rec[2..4]);
    assert_eq!(rec[4..], [0, 0]);
    // Alone, a contribution keeps all its rise.
    let alone = decode_u64s(&ask(Op::Reconcile, &genesis, &held, &[&a]).unwrap(), 2).unwrap();
    assert_eq!(alone, [solo, solo]);
    // Bad requests are named errors, not panics.
    assert_eq!(
        ask(Op::Score, &genesis, &held, &[]).unwrap_err(),
        "score takes one contribution, got 0"
    );
    assert!(
        ask(Op::Score, &genesis, &held, &[&a[..a.len() - 3]])
            .unwrap_err()
            .contains("malformed")
    );
    assert!(parse_reply(&run(&[9])).unwrap_err().contains("op"));
}

#[test]
fn solvers_observing_generated_agent_turns_lower_the_gap_every_round() {
    use crate::embed::{embed, generated_turns};
    let points = |seed, n| -> Vec<Observation> {
        generated_turns(seed, n).iter().map(|t| embed(t)).collect()
    };
    let held_out = points(1000, 40);
    let mut world = World::seed();
    let mut gaps = vec![world.gap(&held_out)];
    for round in 0..3u64 {
        let contributions: Vec<Vec<Event>> = (0..2)
            .map(|s| world.clone().observe(&points(100 * round + s, 6)))
            .collect();
        world = merge(&world, &contributions).0;
        gaps.push(world.gap(&held_out));
    }
    println!("gap on 40 held-out generated turns per round (seed first): {gaps:?}");
    assert!(gaps.windows(2).all(|w| w[1] < w[0]), "{gaps:?}");
}
