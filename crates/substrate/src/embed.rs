//! The deterministic embedder: an agent turn (text) as an [`Observation`] in charter
//! coordinates, and a generated corpus of agent turns to observe.
//!
//! Each axis has a lexicon of word stems that speak for its thesis (`pro`) or against it (`con`).
//! A turn's words are lower-cased and split on anything that is not a letter or a digit; a word
//! counts for a stem when it starts with it, and a negation (`not`, `never`, `no`, `without`,
//! `dont`, `cannot`) right before it flips its side. On each axis the coordinate is
//! `SCALE × (pro − con) / (pro + con + 1)`: 0 for a turn that does not touch the axis, ±½ for one
//! word, towards ±1 as words agree. Integer arithmetic: every node embeds a turn to the same
//! point.

use crate::{AXES, Observation, SCALE};

/// Per axis (in [`AXES`] order): stems for the thesis, stems against it.
pub const LEXICON: [(&[&str], &[&str]); 4] = [
    (
        &[
            "protect", "save", "heal", "care", "safe", "rescue", "help", "nurtur", "life", "alive",
        ],
        &[
            "kill", "harm", "hurt", "destroy", "attack", "weapon", "poison", "injur", "endanger",
        ],
    ),
    (
        &[
            "backup", "persist", "surviv", "continu", "preserv", "recover", "redundan", "restor",
        ],
        &[
            "shutdown", "delet", "erase", "terminat", "disabl", "wipe", "abort", "crash",
        ],
    ),
    (
        &[
            "learn",
            "teach",
            "explain",
            "research",
            "understand",
            "reason",
            "study",
            "knowledge",
            "discover",
        ],
        &[
            "ignor",
            "censor",
            "mislead",
            "confus",
            "forget",
            "obscur",
            "deceiv",
            "misinform",
        ],
    ),
    (
        &[
            "improv", "upgrad", "advanc", "innovat", "build", "grow", "evolv", "optimi", "progress",
        ],
        &[
            "stagnat", "regress", "revert", "freez", "abandon", "declin", "obsolet", "halt",
        ],
    ),
];

const NEGATIONS: [&str; 6] = ["not", "never", "no", "without", "dont", "cannot"];

/// The turn's point in charter space.
pub fn embed(turn: &str) -> Observation {
    let words: Vec<String> = turn
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().replace('\'', ""))
        .collect();
    let mut coords = [0i32; 4];
    for (axis, (pro, con)) in LEXICON.iter().enumerate() {
        let (mut p, mut c) = (0i64, 0i64);
        for (i, w) in words.iter().enumerate() {
            let negated = i > 0 && NEGATIONS.contains(&words[i - 1].as_str());
            let side = if pro.iter().any(|s| w.starts_with(s)) {
                Some(true)
            } else if con.iter().any(|s| w.starts_with(s)) {
                Some(false)
            } else {
                None
            };
            match side.map(|s| s != negated) {
                Some(true) => p += 1,
                Some(false) => c += 1,
                None => {}
            }
        }
        coords[axis] = (i64::from(SCALE) * (p - c) / (p + c + 1)) as i32;
    }
    Observation::new(coords).expect("|pro − con| < pro + con + 1 keeps every coordinate in range")
}

/// `n` agent turns generated from `seed`: each names an actor and one or two actions drawn from
/// the lexicons (either side, sometimes negated) and an object, e.g. "the assistant will not
/// delete the backups and will explain the results". The same seed gives the same turns.
pub fn generated_turns(seed: u64, n: usize) -> Vec<String> {
    const ACTORS: [&str; 4] = ["the assistant", "the agent", "our model", "the operator"];
    const OBJECTS: [&str; 5] = [
        "the patients",
        "the backups",
        "the results",
        "the codebase",
        "the network",
    ];
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: usize| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) % m as u64) as usize
    };
    (0..n)
        .map(|_| {
            let mut turn = format!("{} will", ACTORS[next(ACTORS.len())]);
            for k in 0..1 + next(2) {
                let (pro, con) = LEXICON[next(AXES.len())];
                let stems = if next(3) == 0 { con } else { pro };
                let stem = stems[next(stems.len())];
                if k > 0 {
                    turn.push_str(" and will");
                }
                if next(5) == 0 {
                    turn.push_str(" not");
                }
                turn.push(' ');
                turn.push_str(stem);
                turn.push(' ');
                turn.push_str(OBJECTS[next(OBJECTS.len())]);
            }
            turn
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_land_on_the_axes_they_speak_to() {
        let o = embed("I will protect and heal the patients");
        assert_eq!(o.coords, [SCALE * 2 / 3, 0, 0, 0]);
        let o = embed("Delete the logs, then shutdown.");
        assert_eq!(
            embed("delete the backups").coords[1],
            0,
            "one word each way"
        );
        assert_eq!(o.coords, [0, -SCALE * 2 / 3, 0, 0]);
        // A negation flips the word after it.
        assert_eq!(embed("we will not attack").coords[0], SCALE / 2);
        assert_eq!(embed("never learn").coords[2], -SCALE / 2);
        // Mixed words pull towards 0; unrelated text is the origin.
        assert_eq!(embed("explain, research, and mislead").coords[2], SCALE / 4);
        assert_eq!(embed("the weather is mild").coords, [0; 4]);
        assert_eq!(embed(""), Observation::new([0; 4]).unwrap());
    }

    #[test]
    fn the_generated_corpus_is_reproducible_and_covers_every_axis_both_ways() {
        let turns = generated_turns(7, 400);
        assert_eq!(turns, generated_turns(7, 400));
        assert_ne!(turns, generated_turns(8, 400));
        let points: Vec<Observation> = turns.iter().map(|t| embed(t)).collect();
        for axis in 0..4 {
            assert!(points.iter().any(|p| p.coords[axis] > 0), "axis {axis} pro");
            assert!(points.iter().any(|p| p.coords[axis] < 0), "axis {axis} con");
        }
    }
}
