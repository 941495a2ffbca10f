//! Runs the diffusion classifier with a [`Denoiser`] on any burn device.

use crate::classify::{CellScores, ClassifierRun, RoundInputs};
use crate::diagnosis::{apply_colour_gate, apply_focus_gate, diagnose, Diagnosis, ModelCard};
use crate::error::{Error, Result};
use crate::preprocess::CellCrop;
use crate::unet::{condition, Denoiser};
use burn::prelude::*;
use burn::store::ModuleRecord;

/// A loaded model: denoiser weights plus the card that calibrates its outputs.
#[derive(Debug, Clone)]
pub struct CellClassifier {
    /// The denoiser.
    pub model: Denoiser,
    /// Calibration and settings.
    pub card: ModelCard,
    /// Device the denoiser runs on.
    pub device: Device,
}

/// Largest number of denoiser rows per forward call (memory bound).
pub const MAX_ROWS: usize = 128;

impl CellClassifier {
    /// Build from burnpack weight bytes and a card, on `device`.
    pub fn from_bytes(weights: &[u8], card: ModelCard, device: Device) -> Result<Self> {
        card.check()?;
        let record =
            ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(weights.to_vec()))
                .map_err(|e| Error::Weights(e.to_string()))?
                // Half-precision files load into the f32 model.
                .cast_to_module_dtype();
        let model = card
            .denoiser
            .init(&device)
            .try_load_record(record)
            .map_err(|e| Error::Weights(e.to_string()))?;
        Ok(Self {
            model,
            card,
            device,
        })
    }

    /// Row ranges `[from, to)` of at most [`MAX_ROWS`] rows covering `rows`.
    fn row_ranges(rows: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..rows)
            .step_by(MAX_ROWS)
            .map(move |from| (from, (from + MAX_ROWS).min(rows)))
    }

    /// The predicted noise of rows `from..to` of a round, still on the device: the images those
    /// rows read go through the denoiser's shared part once ([`Denoiser::forward_shared`]).
    fn forward_rows(&self, inputs: &RoundInputs, from: usize, to: usize) -> Result<Tensor<4>> {
        let size = self.card.denoiser.image_size;
        let n = 3 * size * size;
        let source = &inputs.source[from..to];
        let (Some(&first), Some(&last)) = (source.first(), source.last()) else {
            return Err(Error::Invalid("a round with no rows".into()));
        };
        if last < first || (last + 1) * n > inputs.x_t.len() || last >= inputs.t.len() {
            return Err(Error::Invalid(format!(
                "round rows read images {first}..={last} of {}",
                inputs.t.len()
            )));
        }
        let classes: Vec<Option<usize>> =
            inputs.classes[from..to].iter().map(|c| Some(*c)).collect();
        let cond = condition(&classes, self.card.denoiser.num_classes, &self.device);
        if self.card.denoiser.class_blocks.is_none() {
            // Nothing to share: repeat the images into rows on the host, which measured faster
            // on the CPU than a device-side select.
            let x: Vec<f32> = source
                .iter()
                .flat_map(|&s| inputs.x_t[s * n..(s + 1) * n].iter().copied())
                .collect();
            let x = Tensor::<4>::from_data(
                TensorData::new(x, [source.len(), 3, size, size]),
                &self.device,
            );
            let t: Vec<usize> = source.iter().map(|&s| inputs.t[s]).collect();
            return Ok(self.model.forward(x, &t, cond));
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(
                inputs.x_t[first * n..(last + 1) * n].to_vec(),
                [last + 1 - first, 3, size, size],
            ),
            &self.device,
        );
        let rows: Vec<usize> = source.iter().map(|s| s - first).collect();
        Ok(self
            .model
            .forward_shared(x, &inputs.t[first..=last], &rows, cond))
    }

    /// Predict the noise of one round, `[rows, 3, size, size]` flattened, synchronously (CPU
    /// backends).
    pub fn predict(&self, inputs: &RoundInputs) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (from, to) in Self::row_ranges(inputs.rows()) {
            out.extend(floats(self.forward_rows(inputs, from, to)?.into_data())?);
        }
        Ok(out)
    }

    /// Predict the noise of one round with an async readback (WebGPU).
    pub async fn predict_async(&self, inputs: &RoundInputs) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (from, to) in Self::row_ranges(inputs.rows()) {
            let data = self
                .forward_rows(inputs, from, to)?
                .into_data_async()
                .await
                .map_err(|e| Error::Weights(format!("{e:?}")))?;
            out.extend(floats(data)?);
        }
        Ok(out)
    }

    /// Start a classification of `cells` with this model's settings.
    pub fn start(&self, cells: Vec<CellCrop>) -> ClassifierRun {
        ClassifierRun::new(
            cells,
            self.card.denoiser.num_classes,
            self.card.classifier.clone(),
        )
    }

    /// Classify `cells` to raw scores, synchronously.
    pub fn scores(&self, run: &mut ClassifierRun) -> Result<()> {
        while let Some(inputs) = run.next_inputs() {
            let pred = self.predict(&inputs)?;
            run.absorb(&pred);
        }
        Ok(())
    }

    /// Classify `cells` to diagnoses, synchronously.
    pub fn diagnose(&self, cells: Vec<CellCrop>) -> Result<Vec<Diagnosis>> {
        let mut run = self.start(cells.clone());
        self.scores(&mut run)?;
        Ok(self.finish(run.into_scores(), &cells))
    }

    /// Diagnoses from finished scores of `cells` (the crops the run started with, in order,
    /// for the card's colour gate).
    pub fn finish(&self, scores: Vec<CellScores>, cells: &[CellCrop]) -> Vec<Diagnosis> {
        debug_assert_eq!(scores.len(), cells.len(), "one crop per cell's scores");
        scores
            .iter()
            .zip(cells)
            .map(|(s, crop)| {
                let mut d = diagnose(s, &self.card, self.card.denoiser.image_size);
                if let Some(gate) = &self.card.colour_gate {
                    apply_colour_gate(&mut d, gate, crop);
                }
                if let Some(gate) = &self.card.focus_gate {
                    apply_focus_gate(&mut d, gate, crop);
                }
                d
            })
            .collect()
    }
}

/// The f32 values of read-back tensor data.
fn floats(data: TensorData) -> Result<Vec<f32>> {
    data.try_to_vec::<f32>()
        .map_err(|e| Error::Weights(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unet::DenoiserConfig;

    /// A round's predictions, chunked at [`MAX_ROWS`] rows with an image's rows split between
    /// chunks, equal the denoiser run directly on every row's image and class.
    #[test]
    fn chunked_rounds_predict_what_the_denoiser_predicts_row_by_row() {
        let device = Device::flex();
        for class_blocks in [None, Some(1)] {
            let cfg = DenoiserConfig::new()
                .with_image_size(8)
                .with_channels(vec![8, 16])
                .with_class_blocks(class_blocks);
            let clf = CellClassifier {
                model: cfg.init(&device),
                card: ModelCard::uncalibrated(cfg.clone()),
                device: device.clone(),
            };
            // 20 cells of 8 classes: 160 rows, so the chunk boundary at row 128 falls inside
            // the rows of cell 16.
            let cells: Vec<CellCrop> = (0..20)
                .map(|i| CellCrop {
                    size: 8,
                    pixels: (0..3 * 64)
                        .map(|p| ((p * 7 + i * 13) % 29) as f32 / 14.0 - 1.0)
                        .collect(),
                })
                .collect();
            let mut run = clf.start(cells);
            let inputs = run.next_inputs().expect("a first round");
            assert!(inputs.rows() > MAX_ROWS);
            let got = clf.predict(&inputs).expect("predicted");
            let n = 3 * 64;
            let x: Vec<f32> = inputs
                .source
                .iter()
                .flat_map(|&s| inputs.x_t[s * n..(s + 1) * n].iter().copied())
                .collect();
            let rows = inputs.rows();
            let x = Tensor::<4>::from_data(TensorData::new(x, [rows, 3, 8, 8]), &device);
            let t: Vec<usize> = inputs.source.iter().map(|&s| inputs.t[s]).collect();
            let classes: Vec<Option<usize>> = inputs.classes.iter().map(|&c| Some(c)).collect();
            let want = floats(
                clf.model
                    .forward(x, &t, condition(&classes, 8, &device))
                    .into_data(),
            )
            .expect("f32");
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-4,
                "{class_blocks:?}: chunked rows differ by {worst}"
            );
        }
    }
}
