//! A coordinator's scores of a task's solvers, from the evaluation losses it measured: absolute
//! improvement against the project's target (review finding S-1).

/// Protocol floor of the target honest coordinators score against ([`scoring_target`]): a
/// relative improvement of 10⁻⁴ (0.01 %). A spec with a smaller target is scored as if it said
/// this, so that evaluation noise (a few 10⁻⁵ of relative loss between machines whose libtorch
/// kernels round differently) cannot earn a meaningful share of the pool, however the project's
/// creator set its target.
pub const MIN_TARGET_GAIN: f64 = 1e-4;

/// The target honest coordinators score against for a project whose spec states `target_gain`:
/// `target_gain`, at least [`MIN_TARGET_GAIN`].
pub fn scoring_target(target_gain: f64) -> f64 {
    target_gain.max(MIN_TARGET_GAIN)
}

/// Absolute scores of a coordinator from the evaluation losses (review finding S-1): each
/// solver's relative improvement `gain = (base − loss) / base` against `target` (the project's
/// [`scoring_target`]), `round(65535 · min(1, gain / target))`. A loss that is not finite or not
/// below the base scores 0, and so does every solver when the base loss is not a finite positive
/// number (there is no improvement to measure against it). `Rewards` pays the solver pool in
/// proportion to the highest score the coordinators back, so a solver that reaches the target
/// earns the whole pool and a small improvement a small share.
pub fn scores_from_losses(base_loss: f32, losses: &[f32], target: f64) -> Vec<u16> {
    let Some(gains) = gains(base_loss, losses, target) else {
        return vec![0; losses.len()];
    };
    gains
        .into_iter()
        .map(|gain| ((gain / target).min(1.0) * f64::from(u16::MAX)).round() as u16)
        .collect()
}

/// Each solver's relative improvement `(base − loss) / base`, 0 where it is not finite or not
/// positive; `None` when the base loss is not a finite positive number or the target not a
/// finite positive one (nothing can be measured: every solver scores 0).
fn gains(base_loss: f32, losses: &[f32], target: f64) -> Option<Vec<f64>> {
    let base = f64::from(base_loss);
    if !(base.is_finite() && base > 0.0 && target.is_finite() && target > 0.0) {
        return None;
    }
    Some(
        losses
            .iter()
            .map(|&l| {
                let g = (base - f64::from(l)) / base;
                if g.is_finite() && g > 0.0 { g } else { 0.0 }
            })
            .collect(),
    )
}

/// Where a solver's delta comes from, by the protocol's duplicate rule (computed by
/// `autonet_ml::duplicates::originality`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Originality {
    /// Original work, or one of a group of near-duplicates within the task (the group's id: the
    /// index of its first member). A group of `c` solvers shares one contribution's score.
    Group(u32),
    /// A near-duplicate of a delta revealed in an earlier task of the project: scored 0.
    CopiesEarlier,
}

/// A coordinator's scores of a task's solvers: [`scores_from_losses`] adjusted for copied and lazy
/// work (issue "learning that holds up"; `docs/learning.md`, "Copied and lazy work").
///
/// With `gain_i = (base − loss_i) / base` (0 when not finite or not positive):
/// - a delta that copies an earlier task's scores 0 and does not count below;
/// - the **reference gain** is the median of the groups' gains (a group's gain is its best
///   member's), over the groups with a positive gain (the mean of the two middle values for an
///   even count), each group counted once however many solvers share it;
/// - `score_i = round(65535 · min(1, gain_i / target) · min(1, gain_i / reference) / c_i)`,
///   `c_i` the size of its group; every product and quotient is one f64 operation, in that order.
///
/// So a solver whose improvement reaches the task's typical one keeps its absolute score, a lazy
/// one that trained less scores in proportion to what it achieved, and colluders revealing one
/// delta under several names split one contribution. The absolute factor keeps S-1's property:
/// when every solver is trivial, nobody reaches the target.
///
/// # Panics
/// When `originality` and `losses` differ in length.
pub fn task_scores(
    base_loss: f32,
    losses: &[f32],
    target: f64,
    originality: &[Originality],
) -> Vec<u16> {
    assert_eq!(losses.len(), originality.len(), "one originality per loss");
    let Some(gains) = gains(base_loss, losses, target) else {
        return vec![0; losses.len()];
    };
    let mut group_gain: std::collections::BTreeMap<u32, (f64, u32)> = Default::default();
    for (g, o) in gains.iter().zip(originality) {
        if let Originality::Group(id) = o {
            let e = group_gain.entry(*id).or_insert((0.0, 0));
            e.0 = e.0.max(*g);
            e.1 += 1;
        }
    }
    let mut positive: Vec<f64> = group_gain
        .values()
        .map(|(g, _)| *g)
        .filter(|g| *g > 0.0)
        .collect();
    positive.sort_by(f64::total_cmp);
    let reference = match positive.len() {
        0 => return vec![0; losses.len()],
        n if n % 2 == 1 => positive[n / 2],
        n => (positive[n / 2 - 1] + positive[n / 2]) / 2.0,
    };
    gains
        .iter()
        .zip(originality)
        .map(|(&g, o)| match o {
            Originality::CopiesEarlier => 0,
            Originality::Group(_) if g <= 0.0 => 0,
            Originality::Group(id) => {
                let size = f64::from(group_gain[id].1);
                let s = (g / target).min(1.0) * (g / reference).min(1.0) / size;
                (s * f64::from(u16::MAX)).round() as u16
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_absolute_improvement_against_the_target() {
        // Exact binary fractions: base 4, target 1/64 (≈ 1.6 %).
        let t = 1.0 / 64.0;
        // 4 → 3.96875 is 1/128 better: half the target, half the score.
        assert_eq!(scores_from_losses(4.0, &[3.968_75], t), vec![32768]);
        // At and far above the target: both get the full score (before S-1 the first, at 1/64,
        // would have scored 65535 / 16 against the second).
        assert_eq!(
            scores_from_losses(4.0, &[3.9375, 3.0], t),
            vec![65535, 65535]
        );
        // A quarter of the target, alone: a quarter of the score (relative scoring gave 65535).
        assert_eq!(scores_from_losses(4.0, &[3.984_375], t), vec![16384]);
        // No improvement, a worse loss, a diverged or missing delta: 0.
        assert_eq!(
            scores_from_losses(4.0, &[4.0, 4.5, f32::NAN, f32::INFINITY], t),
            vec![0, 0, 0, 0]
        );
        // Scoring is per solver: the others' results do not change a solver's score.
        assert_eq!(
            scores_from_losses(4.0, &[f32::NAN, 3.968_75, 3.0], t),
            vec![0, 32768, 65535]
        );
        // No measurable base: nothing scores.
        for base in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(scores_from_losses(base, &[0.5], t), vec![0], "{base}");
        }
    }

    #[test]
    fn copies_score_nothing_groups_share_lazy_work_scores_less() {
        let t = 1.0 / 64.0;
        let own = |n: u32| Originality::Group(n);
        // Three original solvers far above the target; reference = median gain = 0.5 (loss 2 of 4).
        let s = task_scores(4.0, &[2.0, 1.0, 3.0], t, &[own(0), own(1), own(2)]);
        assert_eq!(s, vec![65535, 65535, 32768]);
        // A lazy solver with half the typical gain (loss 3 → gain 0.25): half the score.
        let s = task_scores(
            4.0,
            &[2.0, 2.0, 2.0, 3.0],
            t,
            &[own(0), own(1), own(2), own(3)],
        );
        assert_eq!(s, vec![65535, 65535, 65535, 32768]);
        // A copy of an earlier task's delta scores 0 and does not move the reference.
        let s = task_scores(
            4.0,
            &[2.0, 1.0, 2.0],
            t,
            &[own(0), Originality::CopiesEarlier, own(2)],
        );
        assert_eq!(s, vec![65535, 0, 65535]);
        // Two colluders with one delta: one contribution, halved; the group counts once in the
        // median (groups 0 and 2 with gain 0.5, group 3 with 0.25 → reference 0.5).
        let s = task_scores(
            4.0,
            &[2.0, 2.0, 2.0, 3.0],
            t,
            &[own(0), own(0), own(2), own(3)],
        );
        assert_eq!(s, vec![32768, 32768, 65535, 32768]);
        // Without duplicates and with gains at the reference, it is scores_from_losses.
        let losses = [3.968_75, 3.968_75];
        assert_eq!(
            task_scores(4.0, &losses, t, &[own(0), own(1)]),
            scores_from_losses(4.0, &losses, t)
        );
        // Nothing improves, or the base is unusable: all 0.
        assert_eq!(
            task_scores(4.0, &[4.0, 5.0], t, &[own(0), own(1)]),
            vec![0, 0]
        );
        assert_eq!(task_scores(f32::NAN, &[1.0], t, &[own(0)]), vec![0]);
    }

    #[test]
    fn the_target_is_floored() {
        assert_eq!(scoring_target(1e-9), MIN_TARGET_GAIN);
        assert_eq!(scoring_target(MIN_TARGET_GAIN), MIN_TARGET_GAIN);
        assert_eq!(scoring_target(0.05), 0.05);
    }
}
