//! Dropping classes: the one-sided paired t-test once every class has had `min_rounds`
//! rounds, and before that the screen fitted on val.

use super::{CellScores, ClassifierSettings};

/// One-sided 1 % critical values of Student's t for 1..=30 degrees of freedom (standard table;
/// kept here rather than pulling a statistics crate with linear algebra into the wasm build).
#[allow(clippy::approx_constant)] // 2.718 is the quantile for 11 degrees of freedom, not e
const T_CRIT_01: [f32; 30] = [
    31.821, 6.965, 4.541, 3.747, 3.365, 3.143, 2.998, 2.896, 2.821, 2.764, 2.718, 2.681, 2.650,
    2.624, 2.602, 2.583, 2.567, 2.552, 2.539, 2.528, 2.518, 2.508, 2.500, 2.492, 2.485, 2.479,
    2.473, 2.467, 2.462, 2.457,
];

/// Critical value of the one-sided 1 % paired t-test with `n` pairs.
pub fn t_critical(n: usize) -> f32 {
    if n < 2 {
        return f32::INFINITY;
    }
    T_CRIT_01[(n - 2).min(T_CRIT_01.len() - 1)]
}

/// Whether paired differences `d = err_c - err_best` show class `c` is worse than the best.
pub fn clearly_worse(diffs: &[f32], strictness: f32) -> bool {
    let n = diffs.len();
    if n < 2 {
        return false;
    }
    let mean = diffs.iter().sum::<f32>() / n as f32;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f32>() / (n - 1) as f32;
    if var <= 0.0 {
        return mean > 0.0;
    }
    let t = mean / (var / n as f32).sqrt();
    t > t_critical(n) * strictness
}

/// After `rounds_done` rounds: drop every class the paired test shows worse than the best, or,
/// before the test can act (fewer than `min_rounds`), every class past the round's screen
/// ([`ClassifierSettings::screen`]).
pub fn eliminate(s: &mut CellScores, rounds_done: usize, settings: &ClassifierSettings) {
    if rounds_done < settings.min_rounds {
        screen(s, rounds_done, settings);
        return;
    }
    let best = s.best();
    for c in 0..s.active.len() {
        if c != best && s.active[c] && clearly_worse(&s.paired(c, best), settings.test_strictness) {
            s.active[c] = false;
        }
    }
}

/// Whether a screen may follow round `rounds_done` at all: the "no class" rounds are over (the
/// gain profile needs every class in them) and the paired test does not act yet.
pub fn screen_may_follow(rounds_done: usize, settings: &ClassifierSettings) -> bool {
    rounds_done >= 1 && rounds_done >= settings.uncond_rounds && rounds_done < settings.min_rounds
}

/// The screen that applies after `rounds_done` rounds: one fitted for that round, where
/// [`screen_may_follow`] allows one.
pub fn screen_after(rounds_done: usize, settings: &ClassifierSettings) -> Option<f32> {
    if !screen_may_follow(rounds_done, settings) {
        return None;
    }
    settings.screen.get(rounds_done - 1).copied().flatten()
}

/// `[classes]` whether a screen keeps each class whatever its gap: the `keep` classes lowest by
/// `gaps` ([`CellScores::screen_gaps`]; ties go to the lower index), at least the leader (gap 0),
/// never a class with an infinite gap (inactive).
pub fn screen_kept(gaps: &[f32], keep: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..gaps.len()).filter(|&c| gaps[c].is_finite()).collect();
    order.sort_by(|&a, &b| gaps[a].total_cmp(&gaps[b]).then(a.cmp(&b)));
    let mut kept = vec![false; gaps.len()];
    for &c in order.iter().take(keep.max(1)) {
        kept[c] = true;
    }
    kept
}

/// Drop every class whose [`CellScores::screen_gaps`] exceeds the screen after `rounds_done`
/// rounds (none where [`screen_after`] has none), except the classes [`screen_kept`] keeps
/// (`screen_keep`; the reference class, gap 0, always stays).
fn screen(s: &mut CellScores, rounds_done: usize, settings: &ClassifierSettings) {
    let Some(limit) = screen_after(rounds_done, settings) else {
        return;
    };
    let gaps = s.screen_gaps();
    let kept = screen_kept(&gaps, settings.screen_keep);
    for (c, g) in gaps.iter().enumerate() {
        if s.active[c] && !kept[c] && *g > limit.max(0.0) {
            s.active[c] = false;
            s.screened[c] = true;
        }
    }
}
