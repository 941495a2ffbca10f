//! Fitting the classifier on val: stratum scales and weights, softmax temperature, anomaly
//! statistics and triage thresholds. Pure functions over recorded full evaluations.
//!
//! Modules: [`strata`] (scales, weights and class offsets), [`screen`], [`temperature`],
//! [`anomaly`], [`triage`]; [`calibrate`] fits them all in order on val.

pub mod anomaly;
pub mod screen;
pub mod strata;
pub mod temperature;
#[cfg(test)]
mod tests;
pub mod triage;

pub use anomaly::{fit_anomaly, fit_gaussian};
pub use screen::fit_screen;
pub use strata::{fit_strata, fit_weights_and_bias};
pub use temperature::{fit_gap_scale_and_temperature, fit_temperature, nll};
pub use triage::{fit_auto_threshold, wilson_lower, AUTO_BOUND_Z};

use crate::classify::{replay, CellScores, ClassifierSettings};
use crate::diagnosis::{anomaly_score, probabilities, ModelCard, TriagePolicy};
use serde::{Deserialize, Serialize};

/// A full evaluation of one val cell: raw error of every class in every round (plan order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FullEval {
    /// `[class][round]` raw errors.
    pub raw: Vec<Vec<f32>>,
    /// True class.
    pub label: usize,
    /// Raw "no class" errors of the first `uncond_rounds` rounds (none in older caches).
    #[serde(default)]
    pub uncond: Vec<f32>,
}

/// `base` with its stratum scales, test weights, score weights and class offsets fitted on
/// `evals` (the other settings kept).
pub fn fit_settings(
    base: &ClassifierSettings,
    evals: &[FullEval],
    strata: &[usize],
) -> ClassifierSettings {
    let mut s = base.clone();
    let (scale, test_weights) = fit_strata(evals, strata, s.max_rounds, &s.excluded);
    s.stratum_scale = scale;
    s.stratum_weights = test_weights;
    let (score_weights, bias) = fit_weights_and_bias(evals, strata, &s);
    s.score_weights = score_weights;
    s.class_bias = bias;
    s.screen = if s.screen_miss > 0.0 {
        fit_screen(&s, evals, strata)
    } else {
        Vec::new()
    };
    s
}

/// Held-out scores of `evals` (in their order): each cell of the even (odd) positions replayed
/// under the settings fitted, from `base`, on the odd (even) ones.
pub fn cross_fitted_scores(
    base: &ClassifierSettings,
    evals: &[FullEval],
    strata: &[usize],
) -> Vec<CellScores> {
    let half = |parity: usize| -> Vec<FullEval> {
        evals
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, e)| e.clone())
            .collect()
    };
    // Settings fitted on the odd cells (for the even ones), then on the even cells.
    let fitted = [
        fit_settings(base, &half(1), strata),
        fit_settings(base, &half(0), strata),
    ];
    evals
        .iter()
        .enumerate()
        .map(|(i, e)| replay(&e.raw, &e.uncond, strata, &fitted[i % 2]))
        .collect()
}

/// A card fitted by [`calibrate`], with the held-out view of val that it was calibrated on.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The calibrated card.
    pub card: ModelCard,
    /// `[cells]` each val cell's scores under the settings fitted on the other half of val
    /// ([`cross_fitted_scores`]), with the card's survivor gap scale.
    pub held_out: Vec<CellScores>,
    /// `[cells]` top-class probability of each held-out score at the card's temperature.
    pub confidence: Vec<f32>,
    /// `[cells]` each cell's anomaly score (of its held-out prediction) under statistics fitted
    /// without it (leave-one-out): the anomaly threshold is a quantile of these.
    pub anomaly: Vec<f32>,
}

/// Fraction of `scores` whose best class is the label of the matching `evals` cell.
pub fn accuracy(scores: &[CellScores], evals: &[FullEval]) -> f64 {
    let correct = scores
        .iter()
        .zip(evals)
        .filter(|(s, e)| s.best() == e.label)
        .count();
    correct as f64 / scores.len().max(1) as f64
}

/// Fit everything on recorded val evaluations and return the calibrated card with the held-out
/// scores it was calibrated on. The settings are fitted on all of `evals`; everything
/// downstream of them on [`cross_fitted_scores`], which stand in for unseen cells: the
/// temperature and survivor gap scale, the auto-accept threshold, the anomaly statistics, and
/// the anomaly threshold (a quantile of leave-one-out anomaly scores, so that about
/// `1 - anomaly_quantile` of new typical cells exceed it).
pub fn calibrate(
    mut card: ModelCard,
    evals: &[FullEval],
    strata: &[usize],
    target_accuracy: f32,
    anomaly_quantile: f32,
) -> Calibration {
    let k = card.denoiser.num_classes;
    card.classifier = fit_settings(&card.classifier, evals, strata);
    let labels: Vec<usize> = evals.iter().map(|e| e.label).collect();
    // In-sample scores would be too good: the weights fit their own cells a little too well
    // (gaps too wide, accuracy too high), which made the probabilities overconfident on test
    // (ECE 0.036 when fitted in-sample), and the anomaly Gaussians fit their own cells too
    // closely (2.1 % of test cells flagged for a 1 % quantile).
    let mut held = cross_fitted_scores(&card.classifier, evals, strata);
    let (survivor_gap_scale, screened_gap_scale, temperature) =
        fit_gap_scale_and_temperature(&mut held, &labels);
    card.classifier.survivor_gap_scale = survivor_gap_scale;
    card.classifier.screened_gap_scale = screened_gap_scale;
    card.temperature = temperature;
    let confidence: Vec<f32> = held
        .iter()
        .map(|s| {
            probabilities(&s.gaps(), card.temperature)
                .into_iter()
                .fold(0.0, f32::max)
        })
        .collect();
    let correct: Vec<bool> = held
        .iter()
        .zip(&labels)
        .map(|(s, &l)| s.best() == l)
        .collect();
    let fitted: Vec<(&CellScores, usize)> = held
        .iter()
        .zip(&labels)
        .filter(|(s, &l)| s.best() == l)
        .map(|(s, &l)| (s, l))
        .collect();
    card.anomaly = fit_anomaly(&fitted, &card.classifier, k);
    // Leave-one-out: a cell outside the fit (misclassified) scores under the card's statistics,
    // each cell of the fit under statistics fitted without it. Folds of 4/5 of val scored wider
    // than the card's statistics (0.4 % of test cells over a 99 % threshold).
    let mut fit_index = 0;
    let anomaly: Vec<f32> = held
        .iter()
        .zip(&labels)
        .map(|(s, &l)| {
            if s.best() != l {
                return anomaly_score(s, s.best(), &card.anomaly);
            }
            let mut rest = fitted.clone();
            rest.remove(fit_index);
            fit_index += 1;
            anomaly_score(s, s.best(), &fit_anomaly(&rest, &card.classifier, k))
        })
        .collect();
    let mut sorted = anomaly.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let qi =
        ((anomaly_quantile * sorted.len() as f32) as usize).min(sorted.len().saturating_sub(1));
    card.triage = TriagePolicy {
        auto_min_confidence: fit_auto_threshold(
            &confidence,
            &correct,
            target_accuracy,
            AUTO_BOUND_Z,
        ),
        anomaly_threshold: sorted.get(qi).copied().unwrap_or(4.0),
        target_accuracy,
    };
    Calibration {
        card,
        held_out: held,
        confidence,
        anomaly,
    }
}
