//! Anomaly statistics: per class, a Gaussian of the gain profiles (or of the conditioning gain,
//! or of the log typical error) of its correctly classified val cells.

use crate::classify::{CellScores, ClassifierSettings};
use crate::diagnosis::{anomaly_value, AnomalyKind, AnomalyStats, ProfileGaussian};

/// Shrinkage of a gain-profile covariance towards its diagonal (a class has tens of val cells
/// for a profile of up to 9 dimensions, some of them strongly correlated).
const PROFILE_SHRINK: f64 = 0.1;

/// Anomaly statistics from correctly classified val cells (`correct`: scores and true class),
/// per class: of the gain profile where the settings have "no class" rounds within the first
/// `min_rounds`, of the conditioning gain where they have some later ones, else of the log
/// typical error. A class with fewer than 5 such cells (or, for the profile, fewer than twice
/// its dimension) takes the pooled statistics of all classes.
pub fn fit_anomaly(
    correct: &[(&CellScores, usize)],
    settings: &ClassifierSettings,
    k: usize,
) -> AnomalyStats {
    let kind = match settings.uncond_rounds {
        0 => AnomalyKind::TypicalError,
        u if u <= settings.min_rounds => AnomalyKind::GainProfile,
        _ => AnomalyKind::ConditioningGain,
    };
    let mut stats = AnomalyStats {
        kind,
        mean: vec![0.0; k],
        std: vec![1.0; k],
        profile_classes: Vec::new(),
        profile: Vec::new(),
    };
    if kind == AnomalyKind::GainProfile {
        stats.profile_classes = (0..k).filter(|c| !settings.excluded.contains(c)).collect();
        let mut by_class: Vec<Vec<Vec<f32>>> = vec![Vec::new(); k];
        for &(s, l) in correct {
            if let Some(p) = s.gain_profile(&stats.profile_classes) {
                by_class[l].push(p);
            }
        }
        let d = stats.profile_classes.len() + 1;
        let all: Vec<Vec<f32>> = by_class.iter().flatten().cloned().collect();
        let pooled = fit_gaussian(&all, d, PROFILE_SHRINK);
        stats.profile = by_class
            .iter()
            .map(|v| {
                if v.len() >= 2 * d {
                    fit_gaussian(v, d, PROFILE_SHRINK)
                } else {
                    pooled.clone()
                }
            })
            .collect();
    }
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); k];
    for &(s, l) in correct {
        if let Some(v) = anomaly_value(s, l, &stats) {
            values[l].push(v);
        }
    }
    let all_values: Vec<f32> = values.iter().flatten().copied().collect();
    let (pooled_mean, pooled_std) = mean_std(&all_values);
    for (c, v) in values.iter().enumerate() {
        (stats.mean[c], stats.std[c]) = if v.len() >= 5 {
            mean_std(v)
        } else {
            (pooled_mean, pooled_std)
        };
    }
    stats
}

/// Mean and standard deviation (floored at 1e-3) of `v`.
fn mean_std(v: &[f32]) -> (f32, f32) {
    let n = v.len().max(1) as f32;
    let m = v.iter().sum::<f32>() / n;
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / n).sqrt();
    (m, sd.max(1e-3))
}

/// Gaussian of the `[d]` rows `x`: their mean and the inverse of their covariance with the
/// off-diagonal terms shrunk by `shrink` (invertible even for few rows, and unchanged by
/// rescaling a dimension). With no rows or a constant dimension, variances are floored at 1e-6.
pub fn fit_gaussian(x: &[Vec<f32>], d: usize, shrink: f64) -> ProfileGaussian {
    use nalgebra::{DMatrix, DVector};
    let n = x.len();
    let mut mean = DVector::<f64>::zeros(d);
    for row in x {
        mean += DVector::from_iterator(d, row.iter().map(|&v| v as f64));
    }
    mean /= n.max(1) as f64;
    let mut cov = DMatrix::<f64>::zeros(d, d);
    for row in x {
        let c = DVector::from_iterator(d, row.iter().map(|&v| v as f64)) - &mean;
        cov += &c * c.transpose();
    }
    cov /= n.max(1) as f64;
    for i in 0..d {
        cov[(i, i)] = cov[(i, i)].max(1e-6);
    }
    let diagonal = DMatrix::from_diagonal(&cov.diagonal());
    let shrunk = cov * (1.0 - shrink) + &diagonal * shrink;
    let precision = match shrunk.cholesky() {
        Some(ch) => ch.inverse(),
        // Only reachable with `shrink` 0 and collinear dimensions: treat them as independent.
        None => DMatrix::from_diagonal(&diagonal.diagonal().map(|v| 1.0 / v)),
    };
    ProfileGaussian {
        mean: mean.iter().map(|&v| v as f32).collect(),
        // nalgebra is column-major; the precision is symmetric, so its order is row-major too.
        precision: precision.iter().map(|&v| v as f32).collect(),
    }
}
