//! The colour gate: flags a cell whose colours are unlike those of the cells the model was
//! calibrated on (another stain, lab or camera), so that its class, however confident, is never
//! auto-accepted.
//!
//! The denoising errors say how typical a cell is for a class, but on smears from another lab
//! the model can be confidently wrong with an unremarkable error profile: on BCCD it calls most
//! white cells platelets and auto-accepted 5 % of them (`docs/bccd-shift.txt`). Colour moments
//! separate such crops from PBC's plainly, and cost nothing to compute.

use crate::calibrate::anomaly::fit_gaussian;
use crate::diagnosis::ProfileGaussian;
use crate::error::{Error, Result};
use crate::preprocess::CellCrop;
use serde::{Deserialize, Serialize};

/// Share of the val cells the gate passes unless told otherwise: about 1 cell in 1,000 of
/// the calibration stain is flagged.
pub const DEFAULT_QUANTILE: f32 = 0.999;

/// Features per crop: the mean and the standard deviation of each of the 3 colour channels.
pub const FEATURES: usize = 6;

/// A crop's colour features: per channel mean, then per channel standard deviation, of the
/// model input (`[3, size, size]`, values in [-1, 1]).
pub fn colour_features(crop: &CellCrop) -> [f32; FEATURES] {
    let n = (crop.size * crop.size).max(1);
    let mut f = [0.0; FEATURES];
    for (ch, plane) in crop.pixels.chunks(n).take(3).enumerate() {
        let mean = plane.iter().sum::<f32>() / n as f32;
        let var = plane.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
        f[ch] = mean;
        f[3 + ch] = var.sqrt();
    }
    f
}

/// Refuse a quantile a gate (`what`: "colour gate", "focus gate") cannot be fitted at (from
/// 0.5 to 1).
pub fn check_quantile(what: &str, quantile: f32) -> Result<()> {
    if (0.5..=1.0).contains(&quantile) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "the {what}'s quantile must be from 0.5 to 1, got {quantile}"
        )))
    }
}

/// Shrinkage of the covariance's off-diagonal terms, as for the anomaly score's Gaussians.
const SHRINK: f64 = 0.1;

/// The gate fitted on val cells: a Gaussian over their colour features; a crop's score is its
/// Mahalanobis distance from it. The features are correlated (a darker stain lowers every
/// channel's mean and contrast together), so the distance, not each feature alone, tells
/// another stain apart: per feature, BCCD's crops lie within 5 standard deviations of PBC's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColourGate {
    /// Mean and precision of the val cells' features (`[6]`, `[6 * 6]`).
    pub gaussian: ProfileGaussian,
    /// Scores above this flag the cell (the `quantile` of the val cells' scores).
    pub threshold: f32,
    /// Share of val cells at or under the threshold.
    pub quantile: f32,
}

impl ColourGate {
    /// Fit on `crops` (val cells): flag what lies beyond their `quantile` (0.5 to 1).
    pub fn fit(crops: &[CellCrop], quantile: f32) -> Result<Self> {
        Self::fit_counted(crops, quantile).map(|(gate, _)| gate)
    }

    /// As [`ColourGate::fit`], with how many of `crops` the fitted gate flags (about
    /// `1 - quantile` of them; fewer where scores tie at the threshold), counted on the scores
    /// the fit computed anyway.
    pub fn fit_counted(crops: &[CellCrop], quantile: f32) -> Result<(Self, usize)> {
        if crops.len() < 10 {
            return Err(Error::Invalid(format!(
                "the colour gate needs at least 10 cells, got {}",
                crops.len()
            )));
        }
        check_quantile("colour gate", quantile)?;
        let feats: Vec<Vec<f32>> = crops.iter().map(|c| colour_features(c).to_vec()).collect();
        let mut gate = Self {
            gaussian: fit_gaussian(&feats, FEATURES, SHRINK),
            threshold: f32::INFINITY,
            quantile,
        };
        let mut scores: Vec<f32> = feats.iter().map(|f| gate.score_features(f)).collect();
        scores.sort_by(f32::total_cmp);
        let at = ((quantile * scores.len() as f32).ceil() as usize).clamp(1, scores.len()) - 1;
        gate.threshold = scores[at];
        let flagged = scores.iter().filter(|&&s| gate.flags(s)).count();
        Ok((gate, flagged))
    }

    /// A crop's score: the Mahalanobis distance of its colour features from the val cells'.
    pub fn score(&self, crop: &CellCrop) -> f32 {
        self.score_features(&colour_features(crop))
    }

    fn score_features(&self, features: &[f32]) -> f32 {
        self.gaussian.distance(features).unwrap_or(f32::INFINITY)
    }

    /// Whether a crop of this score lies outside the val cells' colours.
    pub fn flags(&self, score: f32) -> bool {
        score > self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crop of constant colour `rgb` plus a checkerboard of amplitude `contrast`.
    fn crop(rgb: [f32; 3], contrast: f32) -> CellCrop {
        let size = 8;
        let pixels = (0..3)
            .flat_map(|ch| {
                (0..size * size).map(move |i| {
                    let sign = if (i + i / size) % 2 == 0 { 1.0 } else { -1.0 };
                    rgb[ch] + sign * contrast
                })
            })
            .collect();
        CellCrop { size, pixels }
    }

    #[test]
    fn features_are_channel_means_and_deviations() {
        let f = colour_features(&crop([0.5, -0.25, 0.0], 0.1));
        let want = [0.5, -0.25, 0.0, 0.1, 0.1, 0.1];
        for (a, b) in f.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{f:?}");
        }
    }

    /// `n` crops of one "stain": channel means and contrast varying independently around
    /// `rgb` and `contrast` (a fixed pseudo-random sequence).
    fn stain(n: usize, rgb: [f32; 3], contrast: f32) -> Vec<CellCrop> {
        let mut state = 12345u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        (0..n)
            .map(|_| {
                let c = [
                    rgb[0] + 0.1 * next(),
                    rgb[1] + 0.1 * next(),
                    rgb[2] + 0.1 * next(),
                ];
                crop(c, contrast + 0.08 * next())
            })
            .collect()
    }

    #[test]
    fn the_gate_passes_its_own_stain_and_flags_another() {
        // "PBC": bright red, high contrast.
        let val = stain(400, [0.74, 0.49, 0.44], 0.3);
        let (gate, counted) = ColourGate::fit_counted(&val, 0.99).expect("fit");
        assert_eq!(gate, ColourGate::fit(&val, 0.99).expect("fit"));
        let flagged = val.iter().filter(|c| gate.flags(gate.score(c))).count();
        assert_eq!(counted, flagged, "the fit's count is the gate's own");
        assert!(
            flagged <= 4,
            "{flagged} of 400 val cells flagged at the 99th percentile"
        );
        // New cells of the same stain: about 1 % flagged.
        let new = stain(1000, [0.74, 0.49, 0.44], 0.3).split_off(400);
        let flagged = new.iter().filter(|c| gate.flags(gate.score(c))).count();
        assert!(
            flagged <= 20,
            "{flagged} of 600 new cells of the val stain flagged"
        );
        // "BCCD": darker red, flatter.
        let other = crop([0.44, 0.35, 0.47], 0.14);
        assert!(
            gate.flags(gate.score(&other)),
            "score {}",
            gate.score(&other)
        );
    }

    #[test]
    fn a_flagged_cell_is_triaged_anomaly_whatever_its_confidence() {
        use crate::diagnosis::{apply_colour_gate, Diagnosis, Triage, UncertaintyMap};
        let gate = ColourGate::fit(&stain(200, [0.74, 0.49, 0.44], 0.3), 0.99).expect("fit");
        let confident = Diagnosis {
            class: 7,
            probs: vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
            confidence: 1.0,
            uncertainty: 0.0,
            anomaly: 0.0,
            triage: Triage::Auto,
            runner_up: 6,
            evals: 20,
            rounds: 3,
            conditioning_gain: None,
            map: UncertaintyMap {
                size: 0,
                counterfactual: vec![],
                disagreement: vec![],
            },
            colour: None,
            unusual_colour: false,
            sharpness: None,
            out_of_focus: false,
        };
        let mut d = confident.clone();
        apply_colour_gate(&mut d, &gate, &crop([0.44, 0.35, 0.47], 0.14));
        assert!(d.unusual_colour && d.colour.is_some());
        assert_eq!(d.triage, Triage::Anomaly);
        let mut d = confident.clone();
        apply_colour_gate(&mut d, &gate, &crop([0.74, 0.49, 0.44], 0.3));
        assert!(!d.unusual_colour);
        assert_eq!(
            d.triage,
            Triage::Auto,
            "a cell of the val stain keeps its triage"
        );
    }

    #[test]
    fn bad_fits_are_refused() {
        let few = vec![crop([0.0; 3], 0.1); 3];
        assert!(ColourGate::fit(&few, 0.99).is_err());
        let many = vec![crop([0.0; 3], 0.1); 20];
        assert!(ColourGate::fit(&many, 1.5).is_err());
    }
}
