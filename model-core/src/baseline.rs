//! The discriminative baseline: a small ResNet-style CNN on the same 64x64 crops, trained with
//! cross-entropy. It exists to show, side by side, where the diffusion classifier helps.

use crate::error::Error;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};
use serde::{Deserialize, Serialize};

/// Architecture of the baseline.
#[derive(Config, Debug, PartialEq)]
pub struct BaselineConfig {
    /// Number of classes.
    #[config(default = 8)]
    pub num_classes: usize,
    /// Channels of the stem and each stride-2 stage.
    #[config(default = "vec![24, 32, 64, 128, 192]")]
    pub channels: Vec<usize>,
}

fn default_image_size() -> usize {
    64
}

/// The card stored beside a baseline's weights (`<stem>.json` beside `<stem>.bpk`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineCard {
    /// Architecture.
    pub config: BaselineConfig,
    /// Side of the square input in pixels (cards written before it existed: 64).
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// Softmax temperature fitted on val.
    pub temperature: f32,
    /// Class left out in training, if any.
    pub excluded: Option<usize>,
}

/// A residual stage: stride-2 conv, conv, with a 1x1 stride-2 shortcut.
#[derive(Module, Debug)]
pub struct Stage {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Conv2d,
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .init(device)
}

impl Stage {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let h = self.bn2.forward(self.conv2.forward(h));
        relu(h + self.shortcut.forward(x))
    }
}

/// The baseline CNN.
#[derive(Module, Debug)]
pub struct BaselineCnn {
    stem: Conv2d,
    stem_bn: BatchNorm,
    stages: Vec<Stage>,
    head: Linear,
}

impl BaselineConfig {
    /// Build on `device`.
    pub fn init(&self, device: &Device) -> BaselineCnn {
        let ch = &self.channels;
        let stages = ch
            .windows(2)
            .map(|w| Stage {
                conv1: conv(w[0], w[1], 3, 2, device),
                bn1: BatchNormConfig::new(w[1]).init(device),
                conv2: conv(w[1], w[1], 3, 1, device),
                bn2: BatchNormConfig::new(w[1]).init(device),
                shortcut: conv(w[0], w[1], 1, 2, device),
            })
            .collect();
        BaselineCnn {
            stem: conv(3, ch[0], 3, 1, device),
            stem_bn: BatchNormConfig::new(ch[0]).init(device),
            stages,
            head: LinearConfig::new(*ch.last().unwrap_or(&8), self.num_classes).init(device),
        }
    }
}

impl BaselineCnn {
    /// Class logits.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, 64, 64]` in [-1, 1]
    /// - output: `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = relu(self.stem_bn.forward(self.stem.forward(x)));
        for s in &self.stages {
            h = s.forward(h); // halve the side
        }
        let [b, c, _, _] = h.dims();
        let pooled = h.mean_dim(3).mean_dim(2).reshape([b, c]); // global average pool
        self.head.forward(pooled)
    }

    /// Softmax probabilities at temperature `t`, as rows of f32.
    pub fn probabilities(&self, x: Tensor<4>, t: f32) -> crate::Result<Vec<Vec<f32>>> {
        let logits = self.forward(x);
        let [b, k] = logits.dims();
        let p = softmax(logits / t, 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Weights(format!("{e:?}")))?;
        Ok((0..b).map(|i| p[i * k..(i + 1) * k].to_vec()).collect())
    }

    /// Raw logits as rows.
    pub fn logits(&self, x: Tensor<4>) -> crate::Result<Vec<Vec<f32>>> {
        let logits = self.forward(x);
        let [b, k] = logits.dims();
        let p = logits
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Weights(format!("{e:?}")))?;
        Ok((0..b).map(|i| p[i * k..(i + 1) * k].to_vec()).collect())
    }
}

#[cfg(feature = "native")]
pub use training::*;

#[cfg(feature = "native")]
mod training {
    use super::*;
    use crate::augment::augment;
    use crate::checkpoint::{load_weights_file, open_run_log, Checkpoint, TrainState};
    use crate::dataset::CellSet;
    use crate::train::{learning_rate, step_rng};
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::activation::log_softmax;
    use rand::Rng;
    use std::io::Write;
    use std::path::Path;

    /// Load a calibrated baseline from its weights file (`<stem>.bpk`, f32 or f16) and the card
    /// beside it (`<stem>.json`), on `device`.
    pub fn load_baseline_file(
        weights: &Path,
        device: &Device,
    ) -> crate::Result<(BaselineCnn, BaselineCard)> {
        let card_path = weights.with_extension("json");
        let text = std::fs::read_to_string(&card_path).map_err(|e| Error::io(&card_path, e))?;
        let card: BaselineCard = serde_json::from_str(&text)
            .map_err(|e| Error::Data(format!("{}: {e}", card_path.display())))?;
        let model = load_weights_file(card.config.init(device), weights)?;
        Ok((model, card))
    }

    /// The seed of the baseline's initial weights and (offset by the step) of its batches.
    const BASELINE_SEED: u64 = 1000;

    /// Train the baseline in `run_dir` (log + checkpoints + resume), leaving out `exclude`.
    pub fn train_baseline(
        data: &CellSet,
        cfg: &BaselineConfig,
        steps: usize,
        batch: usize,
        exclude: Option<usize>,
        run_dir: &Path,
        resume: bool,
    ) -> crate::Result<BaselineCnn> {
        let device = Device::flex().autodiff();
        let data = match exclude {
            Some(ex) => data.filter(|l| l != ex),
            None => data.clone(),
        };
        std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
        let ckpt = Checkpoint::new(run_dir.join("ckpt"));
        let (mut model, mut optim, start) = if let Some(st) = ckpt.resume_point(resume)? {
            (
                ckpt.load_module(cfg.init(&device), "model")?,
                AdamConfig::new().init().load_record(ckpt.load_optim()?),
                st.step,
            )
        } else {
            // Seeded like the denoiser's new runs: the same settings give the same run.
            device.seed(BASELINE_SEED);
            (cfg.init(&device), AdamConfig::new().init(), 0)
        };
        let mut log = open_run_log(run_dir)?;
        let size = data.size;
        let k = cfg.num_classes;
        let (mut sum_loss, mut sum_acc, mut count) = (0f64, 0f64, 0usize);
        for step in start..steps {
            let mut rng = step_rng(BASELINE_SEED + step as u64, step);
            let mut x = Vec::with_capacity(batch * 3 * size * size);
            let mut onehot = vec![0f32; batch * k];
            for b in 0..batch {
                let i = rng.random_range(0..data.len());
                x.extend(augment(data.image(i), size, &mut rng));
                onehot[b * k + data.labels[i]] = 1.0;
            }
            let x = Tensor::<4>::from_data(TensorData::new(x, [batch, 3, size, size]), &device);
            let y = Tensor::<2>::from_data(TensorData::new(onehot, [batch, k]), &device);
            let logits = model.forward(x);
            let loss = (log_softmax(logits.clone(), 1) * y.clone()).sum().neg() / batch as f32;
            let acc: i64 = logits
                .inner()
                .argmax(1)
                .equal(y.inner().argmax(1))
                .int()
                .sum()
                .into_scalar::<i64>();
            sum_acc += acc as f64 / batch as f64;
            sum_loss += loss.clone().inner().into_scalar::<f64>();
            count += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(learning_rate(step, 2e-3, 100, steps), model, grads);
            let done = step + 1;
            if done % 20 == 0 || done == steps {
                let line = format!(
                    "step {done} loss {:.4} acc {:.3}",
                    sum_loss / count as f64,
                    sum_acc / count as f64
                );
                println!("{line}");
                let _ = writeln!(log, "{line}");
                (sum_loss, sum_acc, count) = (0.0, 0.0, 0);
            }
            if done % 100 == 0 || done == steps {
                ckpt.save(&model, &model.clone(), &optim, &TrainState { step: done })?;
            }
        }
        Ok(model.valid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::dataset::CellSet;

    #[test]
    fn a_baseline_run_resumes_and_a_new_run_never_overwrites_it() {
        let dir = std::env::temp_dir().join(format!("cytolens-baseline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = CellSet::tiny();
        let cfg = BaselineConfig::new().with_channels(vec![4, 8]);
        let ckpt = Checkpoint::new(dir.join("ckpt"));
        train_baseline(&data, &cfg, 2, 2, None, &dir, false).expect("trained");
        assert_eq!(ckpt.load_state().expect("state").step, 2);
        let e = train_baseline(&data, &cfg, 2, 2, None, &dir, false).expect_err("refused");
        assert!(
            e.to_string()
                .contains("already holds a checkpoint at step 2"),
            "{e}"
        );
        train_baseline(&data, &cfg, 3, 2, None, &dir, true).expect("resumed");
        assert_eq!(ckpt.load_state().expect("state").step, 3);
        let log = std::fs::read_to_string(dir.join("train.log")).expect("log");
        assert_eq!(log.matches("step 3 loss").count(), 1, "{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
