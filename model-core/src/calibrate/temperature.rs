//! The softmax temperature and the gap scales of undecided and screened-out classes, fitted
//! together by likelihood.

use crate::classify::CellScores;
use crate::diagnosis::probabilities;

/// Negative log-likelihood of the labels under `probabilities(gaps, t)`.
pub fn nll(gaps: &[Vec<f32>], labels: &[usize], t: f32) -> f64 {
    gaps.iter()
        .zip(labels)
        .map(|(g, &l)| -(probabilities(g, t)[l].max(1e-12) as f64).ln())
        .sum::<f64>()
        / gaps.len().max(1) as f64
}

/// The survivor gap scale (a grid from 1/2 to 16), the screened gap scale (1/2 to 16, where any
/// class was screened out) and the temperature that together minimise the NLL of `labels` under
/// the gaps of `scores`, whose scales are left at the fitted values. Returns
/// `(survivor_gap_scale, screened_gap_scale, temperature)`.
pub fn fit_gap_scale_and_temperature(
    scores: &mut [CellScores],
    labels: &[usize],
) -> (f32, f32, f32) {
    let any_screened = scores.iter().any(|s| s.screened.iter().any(|&x| x));
    let screened_grid: Vec<f32> = if any_screened {
        (0..=10).map(|i| 2f32.powf(-1.0 + i as f32 * 0.5)).collect()
    } else {
        vec![1.0]
    };
    let mut best = (f64::INFINITY, 1.0f32, 1.0f32, 1.0f32);
    for i in 0..=25 {
        let survivor = 2f32.powf(-1.0 + i as f32 * 5.0 / 25.0);
        for &screened in &screened_grid {
            scores.iter_mut().for_each(|s| {
                s.survivor_gap_scale = survivor;
                s.screened_gap_scale = screened;
            });
            let gaps: Vec<Vec<f32>> = scores.iter().map(|s| s.gaps()).collect();
            let t = fit_temperature(&gaps, labels);
            let loss = nll(&gaps, labels, t);
            if loss < best.0 {
                best = (loss, survivor, screened, t);
            }
        }
    }
    scores.iter_mut().for_each(|s| {
        s.survivor_gap_scale = best.1;
        s.screened_gap_scale = best.2;
    });
    (best.1, best.2, best.3)
}

/// Temperature minimising the NLL (golden-section search on log t over [1e-4, 10]).
pub fn fit_temperature(gaps: &[Vec<f32>], labels: &[usize]) -> f32 {
    let (mut a, mut b) = ((1e-4f64).ln(), 10f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let f = |x: f64| nll(gaps, labels, x.exp() as f32);
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    for _ in 0..80 {
        if f(c) < f(d) {
            b = d;
        } else {
            a = c;
        }
        c = b - g * (b - a);
        d = a + g * (b - a);
    }
    ((a + b) / 2.0).exp() as f32
}
