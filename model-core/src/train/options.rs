//! The options of a denoiser training run, saved in its folder.

use crate::error::{Error, Result};
use crate::schedule::NoiseSchedule;
use crate::unet::DenoiserConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Hyper-parameters of a denoiser training run; saved in the run folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Total optimiser steps.
    pub steps: usize,
    /// Images per step for the denoising loss.
    pub batch: usize,
    /// Images per step for the discriminative term (each denoised under every class).
    pub ce_batch: usize,
    /// Weight of the discriminative term.
    pub ce_weight: f32,
    /// Timestep range `[lo, hi)` of the discriminative term (the classifier's range).
    pub ce_t_range: (usize, usize),
    /// Timestep range `[lo, hi)` of the denoising rows. The whole schedule (`0..1000`) trains a
    /// generator; the classifier, its anomaly score and heatmaps read only their own range
    /// (`50..600`), so a narrower range spends the denoising loss where they look. Run options
    /// written before it existed: the whole schedule.
    #[serde(default = "whole_schedule")]
    pub denoise_t_range: (usize, usize),
    /// Draw the discriminative term's images class-balanced (a class uniformly, then one of its
    /// images) instead of uniformly over images, so that rare classes weigh as much as common
    /// ones in the cross-entropy, as they do in balanced accuracy.
    #[serde(default)]
    pub ce_balanced: bool,
    /// Knowledge distillation: a calibrated baseline CNN (`<stem>.bpk` with its card beside it)
    /// whose probabilities over the training classes, at its card's temperature, are mixed into
    /// the discriminative term's targets. `None`: one-hot targets. Its left-out class must be
    /// the run's, so that a leave-one-out model learns nothing of that class through it.
    #[serde(default)]
    pub ce_teacher: Option<PathBuf>,
    /// The teacher's share of those targets: `(1 - mix) * onehot + mix * teacher`, in [0, 1].
    #[serde(default)]
    pub ce_teacher_mix: f32,
    /// Probability of training a sample with the "no class" token.
    pub p_uncond: f64,
    /// Peak learning rate (Adam).
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// EMA decay per step.
    pub ema_decay: f32,
    /// Seed of every random draw.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Steps between log lines.
    pub log_every: usize,
    /// Class left out of training entirely (for the anomaly experiment).
    pub exclude_class: Option<usize>,
    /// Architecture.
    pub model: DenoiserConfig,
    /// Start a fresh run from the EMA weights of another run's checkpoint folder (fine-tuning
    /// with a new objective or schedule); ignored when resuming.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
}

fn whole_schedule() -> (usize, usize) {
    (0, NoiseSchedule::ddpm().steps())
}

impl TrainOptions {
    /// The file in a run folder that holds a run's options.
    pub const FILE: &'static str = "options.json";

    /// The options a run was trained with: `run_dir/options.json`.
    pub fn read(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Data(format!("{}: {e}", path.display())))
    }

    /// Write these options to `run_dir/options.json` (the folder must exist).
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = run_dir.join(Self::FILE);
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Invalid(e.to_string()))?;
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            steps: 4000,
            batch: 32,
            ce_batch: 4,
            ce_weight: 0.1,
            ce_t_range: (50, 600),
            denoise_t_range: whole_schedule(),
            ce_balanced: false,
            ce_teacher: None,
            ce_teacher_mix: 0.0,
            p_uncond: 0.1,
            lr: 1e-3,
            warmup: 200,
            ema_decay: 0.999,
            seed: 17,
            checkpoint_every: 100,
            log_every: 10,
            exclude_class: None,
            model: DenoiserConfig::new(),
            init_from: None,
        }
    }
}
