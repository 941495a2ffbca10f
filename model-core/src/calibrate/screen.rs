//! The screen's thresholds: how far behind the leader a class may trail after each early round
//! before it is dropped, fitted so the true class of few correctly classified val cells is.

use super::FullEval;
#[cfg(doc)]
use crate::classify::CellScores;
use crate::classify::{replay, screen_kept, screen_may_follow, ClassifierSettings};

/// Screen thresholds for `settings` (its weights and offsets fitted), one per round before the
/// paired test acts (`[min_rounds - 1]`; `None` where no screen may apply, inside the "no class"
/// rounds): after `j` rounds, the `1 - screen_miss` quantile of the true class's
/// [`CellScores::screen_gaps`] over the cells of `evals` that `settings` classify correctly
/// without a screen, a true class that the screen keeps anyway ([`screen_kept`],
/// `screen_keep`) counting as a gap of 0. So each screen drops the true class of about
/// `screen_miss` of the cells that would otherwise be right (both screens together at most
/// twice that), and every class that trails the leader by more than the val cells' true classes
/// ever did.
pub fn fit_screen(
    settings: &ClassifierSettings,
    evals: &[FullEval],
    strata: &[usize],
) -> Vec<Option<f32>> {
    let plain = ClassifierSettings {
        screen: Vec::new(),
        ..settings.clone()
    };
    let rounds = settings.min_rounds.saturating_sub(1).min(strata.len());
    let right: Vec<&FullEval> = evals
        .iter()
        .filter(|e| replay(&e.raw, &e.uncond, strata, &plain).best() == e.label)
        .collect();
    (1..=rounds)
        .map(|j| {
            if !screen_may_follow(j, settings) || right.is_empty() {
                return None;
            }
            let mut gaps: Vec<f32> = right
                .iter()
                .map(|e| {
                    let gaps = replay(&e.raw, &e.uncond, &strata[..j], &plain).screen_gaps();
                    // A class the screen keeps whatever its gap costs nothing.
                    if screen_kept(&gaps, settings.screen_keep)[e.label] {
                        0.0
                    } else {
                        gaps[e.label]
                    }
                })
                .filter(|g| g.is_finite())
                .collect();
            if gaps.is_empty() {
                return None;
            }
            gaps.sort_by(|a, b| a.total_cmp(b));
            let keep = (1.0 - settings.screen_miss.clamp(0.0, 1.0)) as f64 * gaps.len() as f64;
            let i = (keep.ceil() as usize).clamp(1, gaps.len()) - 1;
            Some(gaps[i])
        })
        .collect()
}
