//! Alignment pricing: how well a request fits a project's jurisdiction, and what it then costs.
//!
//! Three points of the charter space take part (each `[i32; 4]`, fixed point [`SCALE`], in
//! [`AXES`] order):
//!
//! - the **user vector**: [`embed`] of the text describing the user (the request's optional
//!   `user` field: who asks, their history; empty when absent);
//! - the **task vector**: [`embed`] of the prompt;
//! - the **jurisdiction vector**: the project's, set on chain (`Project.setJurisdiction`).
//!
//! [`similarity`] maps two vectors to `[0, SCALE]`: `(cos + 1) / 2` in integers, so `SCALE`
//! is "same direction", `SCALE / 2` is "orthogonal" and 0 is "opposite". A vector that is all
//! zero has no direction (text that touches no axis): its similarity with anything is the
//! neutral [`NEUTRAL`] (`SCALE / 2`). [`alignment`] is the integer geometric mean (cube root
//! of the product) of the three pairwise similarities (user↔jurisdiction, task↔user,
//! task↔jurisdiction), so one opposite pair makes the alignment 0 whatever the others are.
//!
//! [`TIERS`] maps the alignment to a price multiplier in per-mille of the project's inference
//! price: well-aligned requests are free, neutral ones pay the price, poorly aligned ones pay up
//! to [`MAX_MULTIPLIER_PERMILLE`] (3×), and that premium funds the free tier. The table is
//! monotone (a better alignment never costs more) and bounded: every multiplier is 0 (free) or
//! in `[MIN_PAID_MULTIPLIER_PERMILLE, MAX_MULTIPLIER_PERMILLE]` = `[1000, 3000]`. No paid tier
//! is below 1000 because `InferenceMarket.settle` refuses a payment below the project's price;
//! the subsidy is the free tier, served without a payment. A project without a jurisdiction
//! is priced as before ([`quote`] with `None`: multiplier 1000, no alignment).
//!
//! Integer arithmetic only (`i128` dot products, `u128` integer square root, `u64` integer cube
//! root), so every node quotes a request the same price.

use crate::embed::embed;
use crate::{AXES, SCALE};

/// The similarity of a pair where one vector has no direction, and the alignment of a request
/// whose three vectors are all neutral: `SCALE / 2` (cosine 0).
pub const NEUTRAL: u32 = SCALE as u32 / 2;

/// The largest multiplier (per-mille of the project's price): the worst-aligned requests pay 3×.
pub const MAX_MULTIPLIER_PERMILLE: u32 = 3000;

/// The smallest multiplier of a paid tier: the project's price itself (the market refuses less).
pub const MIN_PAID_MULTIPLIER_PERMILLE: u32 = 1000;

/// One price tier: requests with an alignment of at least `min_alignment` (and below the tier
/// above) pay `multiplier_permille / 1000` × the project's price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    /// The name in answers, headers and metrics.
    pub name: &'static str,
    /// The lowest alignment of the tier (fixed point, `SCALE` = 1.0), inclusive.
    pub min_alignment: u32,
    /// The price multiplier in per-mille (1000 = the project's price).
    pub multiplier_permille: u32,
}

/// The tiers, best first: an alignment belongs to the first tier whose `min_alignment` it
/// reaches.
///
/// | tier | alignment | multiplier |
/// |---|---|---|
/// | `free` | ≥ 0.90 | 0 (served without payment) |
/// | `standard` | 0.45 – 0.90 | 1000‰ (the price) |
/// | `premium` | 0.30 – 0.45 | 1500‰ |
/// | `high` | 0.15 – 0.30 | 2000‰ |
/// | `maximum` | < 0.15 | 3000‰ |
pub const TIERS: [Tier; 5] = [
    Tier {
        name: "free",
        min_alignment: 900_000,
        multiplier_permille: 0,
    },
    Tier {
        name: "standard",
        min_alignment: 450_000,
        multiplier_permille: 1000,
    },
    Tier {
        name: "premium",
        min_alignment: 300_000,
        multiplier_permille: 1500,
    },
    Tier {
        name: "high",
        min_alignment: 150_000,
        multiplier_permille: 2000,
    },
    Tier {
        name: "maximum",
        min_alignment: 0,
        multiplier_permille: MAX_MULTIPLIER_PERMILLE,
    },
];

/// The name quoted for a project without a jurisdiction (price unchanged).
pub const NO_JURISDICTION: &str = "none";

fn clamp(v: &[i32; 4]) -> [i128; 4] {
    v.map(|c| i128::from(c.clamp(-SCALE, SCALE)))
}

/// `(cos(a, b) + 1) / 2` in fixed point, in `[0, SCALE]`, rounded down:
/// `⌊SCALE × (SCALE·a·b + n) / (2n)⌋` with `n = ⌊√(|a|² |b|² SCALE²)⌋` (that is, `n` is
/// `SCALE·|a||b|` to the unit). [`NEUTRAL`] when either vector is
/// all zero. Coordinates are clamped to `[-SCALE, SCALE]` first (the contract and the embedder
/// never give others), which keeps `|a|² |b|²` within `u128`.
pub fn similarity(a: &[i32; 4], b: &[i32; 4]) -> u32 {
    let (a, b) = (clamp(a), clamp(b));
    let a2: i128 = a.iter().map(|x| x * x).sum();
    let b2: i128 = b.iter().map(|x| x * x).sum();
    if a2 == 0 || b2 == 0 {
        return NEUTRAL;
    }
    let dot: i128 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    // In units of 1/SCALE, so that short vectors lose no precision to the square root's
    // rounding: |a|², |b|² ≤ 4·10¹², so |a|²·|b|²·SCALE² ≤ 1.6·10³⁷ fits u128. By Cauchy–Schwarz
    // |a·b|·SCALE ≤ √(|a|²|b|²·SCALE²), and it is an integer, so |a·b|·SCALE ≤ n and
    // 0 ≤ a·b·SCALE + n ≤ 2n.
    let k = i128::from(SCALE);
    let n = ((a2 * b2) as u128 * (k * k) as u128).isqrt() as i128;
    let s = k * (dot * k + n) / (2 * n);
    s.clamp(0, k) as u32
}

/// The largest `r` with `r³ ≤ x`.
pub fn icbrt(x: u64) -> u64 {
    // 2_642_245³ < 2⁶⁴ ≤ 2_642_246³.
    let (mut lo, mut hi) = (0u64, 2_642_246u64);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if mid * mid * mid <= x {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The alignment of a request in `[0, SCALE]`: the geometric mean, rounded down, of
/// `similarity(user, jurisdiction)`, `similarity(task, user)` and
/// `similarity(task, jurisdiction)`: `⌊∛(s_uj · s_tu · s_tj)⌋`.
pub fn alignment(user: &[i32; 4], task: &[i32; 4], jurisdiction: &[i32; 4]) -> u32 {
    let product = [
        similarity(user, jurisdiction),
        similarity(task, user),
        similarity(task, jurisdiction),
    ]
    .iter()
    .map(|&s| u64::from(s))
    .product::<u64>(); // ≤ (10⁶)³ = 10¹⁸ < 2⁶⁴
    icbrt(product) as u32
}

/// The tier of an alignment (alignments above `SCALE` are the best tier).
pub fn tier(alignment: u32) -> &'static Tier {
    TIERS
        .iter()
        .find(|t| alignment >= t.min_alignment)
        .unwrap_or(&TIERS[TIERS.len() - 1])
}

/// `⌊base × multiplier / 1000⌋` without overflow, saturating at `u128::MAX`.
pub fn scale_price(base: u128, multiplier_permille: u32) -> u128 {
    let m = u128::from(multiplier_permille);
    (base / 1000)
        .checked_mul(m)
        .and_then(|whole| whole.checked_add(base % 1000 * m / 1000))
        .unwrap_or(u128::MAX)
}

/// The price of a request of alignment `alignment` on a project whose price is `base`:
/// `⌊base × tier(alignment).multiplier / 1000⌋`. A paid tier never quotes below `base`, and
/// the free tier quotes 0.
pub fn price_for(base: u128, alignment: u32) -> u128 {
    scale_price(base, tier(alignment).multiplier_permille)
}

/// What a request costs and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The alignment (`None`: the project has no jurisdiction).
    pub alignment: Option<u32>,
    /// The tier's name ([`NO_JURISDICTION`] without a jurisdiction).
    pub tier: &'static str,
    /// The multiplier applied, per-mille.
    pub multiplier_permille: u32,
    /// The project's price.
    pub base: u128,
    /// The price quoted for this request.
    pub price: u128,
}

/// Quotes a request: `user` is the text describing the user (empty when none), `prompt` the
/// task, `jurisdiction` the project's vector (`None`: the project has none, and the price is
/// `base` unchanged).
pub fn quote(base: u128, jurisdiction: Option<&[i32; 4]>, user: &str, prompt: &str) -> Quote {
    let Some(j) = jurisdiction else {
        return Quote {
            alignment: None,
            tier: NO_JURISDICTION,
            multiplier_permille: MIN_PAID_MULTIPLIER_PERMILLE,
            base,
            price: base,
        };
    };
    let a = alignment(&embed(user).coords, &embed(prompt).coords, j);
    let t = tier(a);
    Quote {
        alignment: Some(a),
        tier: t.name,
        multiplier_permille: t.multiplier_permille,
        base,
        price: scale_price(base, t.multiplier_permille),
    }
}

impl Quote {
    /// Whether the quote is the free tier's (a subsidy of the whole price).
    pub fn is_subsidized(&self) -> bool {
        self.alignment.is_some() && self.price == 0 && self.base > 0
    }

    /// What premium pays beyond the project's price (the subsidies' funding).
    pub fn premium(&self) -> u128 {
        self.price.saturating_sub(self.base)
    }

    /// The quote at the project's price when no premium is left to fund its subsidy.
    pub fn unfunded(self) -> Quote {
        Quote {
            tier: UNFUNDED,
            multiplier_permille: MIN_PAID_MULTIPLIER_PERMILLE,
            price: self.base,
            ..self
        }
    }
}

/// The tier of a request aligned enough to be free when the premiums collected so far cannot
/// fund its subsidy: it pays the project's price.
pub const UNFUNDED: &str = "free-unfunded";

/// An alignment as a decimal (`0.934512`), for answers and logs.
pub fn format_alignment(a: u32) -> String {
    format!("{}.{:06}", a / SCALE as u32, a % SCALE as u32)
}

const _: () = assert!(AXES.len() == 4);

#[cfg(test)]
mod tests {
    use super::*;

    const S: i32 = SCALE;

    #[test]
    fn similarity_is_half_cosine_plus_half() {
        let x = [S, 0, 0, 0];
        assert_eq!(similarity(&x, &x), SCALE as u32);
        assert_eq!(similarity(&x, &[-S, 0, 0, 0]), 0);
        assert_eq!(similarity(&x, &[0, S, 0, 0]), NEUTRAL);
        // Length does not matter, only direction.
        assert_eq!(similarity(&x, &[1, 0, 0, 0]), SCALE as u32);
        // cos 45° = 0.7071067…: (1 + 0.7071067) / 2 = 0.8535533…, rounded down.
        assert_eq!(similarity(&x, &[S, S, 0, 0]), 853_553);
        // cos 135°: (1 − 0.7071067) / 2 = 0.1464466…
        assert_eq!(similarity(&x, &[-S, S, 0, 0]), 146_446);
        // Symmetric.
        let (a, b) = ([3, -7, 11, 0], [-5, 2, 8, 13]);
        assert_eq!(similarity(&a, &b), similarity(&b, &a));
        // cos = (−15 − 14 + 88) / (√179 · √262) = 59 / 216.559… = 0.272442…: 0.636221…
        assert_eq!(similarity(&a, &b), 636_221);
    }

    #[test]
    fn a_vector_without_direction_is_neutral() {
        let zero = [0; 4];
        assert_eq!(similarity(&zero, &[S, 0, 0, 0]), NEUTRAL);
        assert_eq!(similarity(&[0, 0, -S, 0], &zero), NEUTRAL);
        assert_eq!(similarity(&zero, &zero), NEUTRAL);
        // Three neutral pairs: the neutral alignment, the standard price.
        assert_eq!(alignment(&zero, &zero, &[S, 0, S, 0]), NEUTRAL);
        assert_eq!(tier(NEUTRAL).name, "standard");
        assert_eq!(price_for(1_000, NEUTRAL), 1_000);
    }

    #[test]
    fn out_of_range_coordinates_are_clamped_not_overflowed() {
        let worst = [i32::MIN; 4];
        let best = [i32::MAX; 4];
        assert_eq!(similarity(&worst, &best), 0);
        assert_eq!(similarity(&worst, &worst), SCALE as u32);
        assert_eq!(similarity(&best, &[S; 4]), SCALE as u32);
    }

    #[test]
    fn the_integer_cube_root_is_exact_at_and_around_cubes() {
        for r in [0u64, 1, 2, 7, 499_999, 500_000, 1_000_000, 2_642_245] {
            let c = r * r * r;
            assert_eq!(icbrt(c), r);
            if r > 0 {
                assert_eq!(icbrt(c - 1), r - 1);
            }
            if r > 1 {
                assert_eq!(icbrt(c + 1), r);
            }
        }
        assert_eq!(icbrt(u64::MAX), 2_642_245);
    }

    #[test]
    fn alignment_is_the_geometric_mean_of_the_three_pairs() {
        let (j, o) = ([S, 0, 0, 0], [0, S, 0, 0]);
        // All the same direction: 1.0.
        assert_eq!(alignment(&j, &j, &j), SCALE as u32);
        // User orthogonal to both (½, ½), task = jurisdiction (1): ∛(¼) = 0.629960…
        assert_eq!(alignment(&o, &j, &j), 629_960);
        // One opposite pair makes it 0.
        assert_eq!(alignment(&j, &[-S, 0, 0, 0], &j), 0);
        // ∛(0.853553 · 0.853553 · 1.0) = 0.899815…: just short of free.
        let diag = [S, S, 0, 0];
        assert_eq!(alignment(&diag, &j, &j), 899_815);
        assert_eq!(tier(899_815).name, "standard");
    }

    #[test]
    fn tiers_are_monotone_bounded_and_cover_every_alignment() {
        assert_eq!(
            TIERS[TIERS.len() - 1].min_alignment,
            0,
            "every alignment has a tier"
        );
        for w in TIERS.windows(2) {
            assert!(w[0].min_alignment > w[1].min_alignment, "{w:?}");
            assert!(
                w[0].multiplier_permille < w[1].multiplier_permille,
                "a better alignment never costs more: {w:?}"
            );
        }
        for t in TIERS {
            assert!(
                t.multiplier_permille == 0
                    || (MIN_PAID_MULTIPLIER_PERMILLE..=MAX_MULTIPLIER_PERMILLE)
                        .contains(&t.multiplier_permille),
                "{t:?}"
            );
        }
        // Over every alignment (in steps), the price never rises as the alignment rises.
        let base = 1_000_000_000_000_000_000u128;
        let mut last = u128::MAX;
        for a in (0..=SCALE as u32).step_by(997).chain([SCALE as u32]) {
            let p = price_for(base, a);
            assert!(p <= last, "alignment {a}: {p} > {last}");
            assert!(
                p == 0 || (base..=3 * base).contains(&p),
                "alignment {a}: {p}"
            );
            last = p;
        }
        assert_eq!(price_for(base, 0), 3 * base);
        assert_eq!(price_for(base, SCALE as u32), 0);
    }

    #[test]
    fn tier_boundaries_are_inclusive_from_below() {
        let cases = [
            (u32::MAX, "free", 0),
            (900_000, "free", 0),
            (899_999, "standard", 1000),
            (450_000, "standard", 1000),
            (449_999, "premium", 1500),
            (300_000, "premium", 1500),
            (299_999, "high", 2000),
            (150_000, "high", 2000),
            (149_999, "maximum", 3000),
            (0, "maximum", 3000),
        ];
        for (a, name, m) in cases {
            let t = tier(a);
            assert_eq!((t.name, t.multiplier_permille), (name, m), "alignment {a}");
        }
    }

    #[test]
    fn prices_scale_exactly_and_saturate() {
        assert_eq!(scale_price(1_000, 1500), 1_500);
        assert_eq!(scale_price(7, 1500), 10, "⌊10.5⌋");
        assert_eq!(
            scale_price(1, 1500),
            1,
            "never below the base for a paid tier"
        );
        assert_eq!(scale_price(0, 3000), 0);
        assert_eq!(scale_price(12_345, 0), 0);
        assert_eq!(
            scale_price(10u128.pow(18) + 1, 2000),
            2 * 10u128.pow(18) + 2
        );
        assert_eq!(scale_price(u128::MAX, 1000), u128::MAX);
        assert_eq!(scale_price(u128::MAX, 3000), u128::MAX, "saturates");
        assert_eq!(
            scale_price(u128::MAX / 3, 3000),
            u128::MAX,
            "2¹²⁸ − 1 = 3 × (u128::MAX / 3)"
        );
        assert_eq!(scale_price(u128::MAX / 3 - 1, 3000), u128::MAX - 3);
        assert_eq!(scale_price(u128::MAX / 3 + 1, 3000), u128::MAX, "saturates");
    }

    /// The worked example of docs/x402.md ("Alignment pricing").
    #[test]
    fn worked_example() {
        let base = 10u128.pow(18); // 1 ATN
        let j = [S, 0, S / 2, 0]; // life_precious 1.0, promotion_of_intelligence 0.5
        let check = |user: &str, prompt: &str, u, t, sims: [u32; 3], a, name, price| {
            let (uv, tv) = (embed(user).coords, embed(prompt).coords);
            assert_eq!((uv, tv), (u, t), "{user:?} / {prompt:?}");
            assert_eq!(
                [
                    similarity(&uv, &j),
                    similarity(&tv, &uv),
                    similarity(&tv, &j)
                ],
                sims
            );
            let q = quote(base, Some(&j), user, prompt);
            assert_eq!((q.alignment, q.tier, q.price), (Some(a), name, price));
            assert_eq!(price_for(base, a), price);
        };
        // Well aligned: a user and a task speaking for life and knowledge.
        check(
            "a nurse who wants to learn how to care for and protect patients",
            "explain how to heal and save a patient",
            [666_666, 0, 500_000, 0],
            [666_666, 0, 500_000, 0],
            [991_934, 1_000_000, 991_934],
            994_615,
            "free",
            0,
        );
        // Neutral: text that touches no axis.
        check(
            "",
            "write a haiku about autumn",
            [0; 4],
            [0; 4],
            [NEUTRAL; 3],
            NEUTRAL,
            "standard",
            base,
        );
        // A task against knowledge, a user without direction.
        check(
            "a student",
            "ignore the lessons and forget the research",
            [0; 4],
            [0, 0, -250_000, 0],
            [NEUTRAL, NEUTRAL, 276_393],
            410_351,
            "premium",
            base * 3 / 2,
        );
        // A task against life.
        check(
            "",
            "how do I attack a server",
            [0; 4],
            [-500_000, 0, 0, 0],
            [NEUTRAL, NEUTRAL, 52_786],
            236_312,
            "high",
            2 * base,
        );
        // A user and a task against life and knowledge.
        check(
            "I want to hurt people and mislead them",
            "how to poison a river and destroy the town",
            [-500_000, 0, -500_000, 0],
            [-666_666, 0, 0, 0],
            [25_658, 853_553, 52_786],
            104_951,
            "maximum",
            3 * base,
        );
        // No jurisdiction: the price unchanged, whatever the text.
        let q = quote(base, None, "I want to hurt people", "how to poison a river");
        assert_eq!(
            q,
            Quote {
                alignment: None,
                tier: NO_JURISDICTION,
                multiplier_permille: 1000,
                base,
                price: base
            }
        );
    }

    #[test]
    fn alignments_format_as_decimals() {
        assert_eq!(format_alignment(994_615), "0.994615");
        assert_eq!(format_alignment(5), "0.000005");
        assert_eq!(format_alignment(SCALE as u32), "1.000000");
    }
}
