//! Runs the diffusion classifier with a [`Denoiser`] on any burn device.

use crate::classify::{CellScores, ClassifierRun, RoundInputs};
use crate::diagnosis::{diagnose, Diagnosis, ModelCard};
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

    fn input_tensors(
        &self,
        inputs: &RoundInputs,
        from: usize,
        to: usize,
    ) -> (Tensor<4>, Tensor<2>) {
        let size = self.card.denoiser.image_size;
        let n = 3 * size * size;
        let rows = to - from;
        let x = Tensor::<4>::from_data(
            TensorData::new(inputs.x_t[from * n..to * n].to_vec(), [rows, 3, size, size]),
            &self.device,
        );
        let classes: Vec<Option<usize>> =
            inputs.classes[from..to].iter().map(|c| Some(*c)).collect();
        (
            x,
            condition(&classes, self.card.denoiser.num_classes, &self.device),
        )
    }

    /// Row ranges `[from, to)` of at most [`MAX_ROWS`] rows covering `rows`.
    fn row_ranges(rows: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..rows)
            .step_by(MAX_ROWS)
            .map(move |from| (from, (from + MAX_ROWS).min(rows)))
    }

    /// The predicted noise of rows `from..to` of a round, still on the device.
    fn forward_rows(&self, inputs: &RoundInputs, from: usize, to: usize) -> Tensor<4> {
        let (x, cond) = self.input_tensors(inputs, from, to);
        self.model.forward(x, &inputs.t[from..to], cond)
    }

    /// Predict the noise of one round, synchronously (CPU backends).
    pub fn predict(&self, inputs: &RoundInputs) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(inputs.x_t.len());
        for (from, to) in Self::row_ranges(inputs.t.len()) {
            out.extend(floats(self.forward_rows(inputs, from, to).into_data())?);
        }
        Ok(out)
    }

    /// Predict the noise of one round with an async readback (WebGPU).
    pub async fn predict_async(&self, inputs: &RoundInputs) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(inputs.x_t.len());
        for (from, to) in Self::row_ranges(inputs.t.len()) {
            let data = self
                .forward_rows(inputs, from, to)
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
        let mut run = self.start(cells);
        self.scores(&mut run)?;
        Ok(self.finish(run.into_scores()))
    }

    /// Diagnoses from finished scores.
    pub fn finish(&self, scores: Vec<CellScores>) -> Vec<Diagnosis> {
        scores
            .iter()
            .map(|s| diagnose(s, &self.card, self.card.denoiser.image_size))
            .collect()
    }
}

/// The f32 values of read-back tensor data.
fn floats(data: TensorData) -> Result<Vec<f32>> {
    data.try_to_vec::<f32>()
        .map_err(|e| Error::Weights(format!("{e:?}")))
}
