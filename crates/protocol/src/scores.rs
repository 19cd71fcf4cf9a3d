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
    let base = f64::from(base_loss);
    if !(base.is_finite() && base > 0.0 && target.is_finite() && target > 0.0) {
        return vec![0; losses.len()];
    }
    losses
        .iter()
        .map(|&l| {
            let gain = (base - f64::from(l)) / base;
            if !(gain.is_finite() && gain > 0.0) {
                return 0;
            }
            ((gain / target).min(1.0) * f64::from(u16::MAX)).round() as u16
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
    fn the_target_is_floored() {
        assert_eq!(scoring_target(1e-9), MIN_TARGET_GAIN);
        assert_eq!(scoring_target(MIN_TARGET_GAIN), MIN_TARGET_GAIN);
        assert_eq!(scoring_target(0.05), 0.05);
    }
}
