//! The focus gate: flags a cell whose crop is blurrier than the cells the model was calibrated
//! on (a field out of focus, or too few pixels per cell, enlarged), so that its class, however
//! confident, is never auto-accepted.
//!
//! Blur makes the classifier confidently wrong: on 200 PBC test cells (25 per class) blurred
//! with a Gaussian of 3 px at 128 px, accuracy fell from 0.915 to 0.745 while 42 % were still
//! auto-accepted, at 0.940 accuracy (0.794 at 5 px), and the anomaly score flagged only 15 %
//! (`docs/blur.txt`). The crop's sharpness, the log-variance of its Laplacian, tells them apart
//! plainly: every cell blurred by 3 px or more lies below the val cells' 0.1 % quantile.

use crate::error::{Error, Result};
use crate::preprocess::CellCrop;
use serde::{Deserialize, Serialize};

/// Share of the val cells the gate passes unless told otherwise: about 1 cell in 1,000 of
/// the calibration images is flagged.
pub const DEFAULT_QUANTILE: f32 = 0.999;

/// A crop's sharpness: the natural log of the variance of the 4-neighbour Laplacian of its
/// luminance (the mean of the 3 channels) over the interior pixels, at the model input
/// (`[3, size, size]`, values in [-1, 1]). Higher is sharper; a flat crop gives about -27.6
/// (the variance floor 1e-12), never minus infinity.
pub fn sharpness(crop: &CellCrop) -> f32 {
    let s = crop.size;
    let n = s * s;
    if s < 3 || crop.pixels.len() < 3 * n {
        return (1e-12f64).ln() as f32;
    }
    let luma: Vec<f64> = (0..n)
        .map(|i| (0..3).map(|c| crop.pixels[c * n + i] as f64).sum::<f64>() / 3.0)
        .collect();
    let at = |x: usize, y: usize| luma[y * s + x];
    let lap: Vec<f64> = (1..s - 1)
        .flat_map(|y| (1..s - 1).map(move |x| (x, y)))
        .map(|(x, y)| 4.0 * at(x, y) - at(x - 1, y) - at(x + 1, y) - at(x, y - 1) - at(x, y + 1))
        .collect();
    let mean = lap.iter().sum::<f64>() / lap.len() as f64;
    let var = lap.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / lap.len() as f64;
    (var + 1e-12).ln() as f32
}

/// The gate fitted on val cells: a crop whose [`sharpness`] lies under `threshold` is flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FocusGate {
    /// Sharpness under this flags the cell (the val cells' `1 - quantile` quantile).
    pub threshold: f32,
    /// Share of val cells at or above the threshold.
    pub quantile: f32,
}

impl FocusGate {
    /// Fit on `crops` (val cells): flag what is blurrier than their `quantile` (0.5 to 1);
    /// with how many of them the fitted gate flags (about `1 - quantile`).
    pub fn fit_counted(crops: &[CellCrop], quantile: f32) -> Result<(Self, usize)> {
        if crops.len() < 10 {
            return Err(Error::Invalid(format!(
                "the focus gate needs at least 10 cells, got {}",
                crops.len()
            )));
        }
        crate::colour_gate::check_quantile("focus gate", quantile)?;
        let mut scores: Vec<f32> = crops.iter().map(sharpness).collect();
        scores.sort_by(f32::total_cmp);
        let below =
            (((1.0 - quantile) * scores.len() as f32).floor() as usize).min(scores.len() - 1);
        let gate = Self {
            threshold: scores[below],
            quantile,
        };
        let flagged = scores.iter().filter(|&&s| gate.flags(s)).count();
        Ok((gate, flagged))
    }

    /// Whether a crop of this sharpness is blurrier than the val cells.
    pub fn flags(&self, sharpness: f32) -> bool {
        sharpness < self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crop of `size` px holding a disc-and-stripes pattern, box-blurred `blur` times.
    fn crop(seed: usize, blur: usize) -> CellCrop {
        let size = 32;
        let mut luma: Vec<f32> = (0..size * size)
            .map(|i| {
                let (x, y) = ((i % size) as f32, (i / size) as f32);
                let r = ((x - 16.0).powi(2) + (y - 16.0).powi(2)).sqrt();
                let stripes = if ((x + y) as usize + seed) % 4 < 2 {
                    0.3
                } else {
                    -0.3
                };
                if r < 10.0 + seed as f32 % 3.0 {
                    -0.4 + stripes
                } else {
                    0.5 + 0.3 * stripes
                }
            })
            .collect();
        for _ in 0..blur {
            let prev = luma.clone();
            for y in 1..size - 1 {
                for x in 1..size - 1 {
                    let at = |dx: usize, dy: usize| prev[(y + dy - 1) * size + x + dx - 1];
                    luma[y * size + x] = (0..3)
                        .flat_map(|dy| (0..3).map(move |dx| (dx, dy)))
                        .map(|(dx, dy)| at(dx, dy))
                        .sum::<f32>()
                        / 9.0;
                }
            }
        }
        let pixels = (0..3).flat_map(|_| luma.clone()).collect();
        CellCrop { size, pixels }
    }

    #[test]
    fn blur_lowers_sharpness_and_a_flat_crop_has_a_finite_floor() {
        let sharp = sharpness(&crop(0, 0));
        let soft = sharpness(&crop(0, 1));
        let softer = sharpness(&crop(0, 3));
        assert!(sharp > soft && soft > softer, "{sharp} {soft} {softer}");
        let flat = CellCrop {
            size: 16,
            pixels: vec![0.2; 3 * 256],
        };
        assert!((sharpness(&flat) - (1e-12f64).ln() as f32).abs() < 1e-3);
    }

    #[test]
    fn the_gate_flags_blurred_crops_and_about_its_share_of_the_val_crops() {
        let val: Vec<CellCrop> = (0..200).map(|k| crop(k, 0)).collect();
        let (gate, flagged) = FocusGate::fit_counted(&val, 0.99).expect("fit");
        assert!(flagged <= 2, "{flagged} of 200 flagged at 0.99");
        assert!(!gate.flags(sharpness(&crop(7, 0))));
        assert!(
            gate.flags(sharpness(&crop(7, 2))),
            "a blurred crop is flagged"
        );
        assert!(FocusGate::fit_counted(&val[..5], 0.99).is_err());
        assert!(FocusGate::fit_counted(&val, 0.2).is_err());
    }
}
