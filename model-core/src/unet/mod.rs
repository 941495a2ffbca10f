//! The class-conditional denoiser: a small UNet that predicts the noise `eps` in `x_t`.
//!
//! Efficiency choices, each measured on the 2-core CPU:
//! - the 64x64 input is pixel-unshuffled to 32x32x12 first (patch size 2), so no convolution
//!   runs at full resolution;
//! - the class enters through a one-hot vector (index `num_classes` is the learned "no class"
//!   token) mapped to FiLM scale/shift in every residual block, together with the timestep;
//! - or, with [`DenoiserConfig::class_blocks`], only in the last decoder blocks: everything before
//!   them (the *trunk*) sees the "no class" token, so one trunk pass of a noised image serves
//!   every class it is scored under ([`Denoiser::forward_shared`]), and only the *head* runs
//!   once per class.

mod block;
mod carry;
mod config;
#[cfg(test)]
mod tests;

pub use block::ResBlock;
pub use config::DenoiserConfig;

use block::run_blocks;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::nn::{PixelShuffle, PixelUnshuffle};
use burn::prelude::*;
use burn::tensor::activation::silu;

/// Class-conditional noise predictor `eps_theta(x_t, t, c)`.
#[derive(Module, Debug)]
pub struct Denoiser {
    unshuffle: PixelUnshuffle,
    shuffle: PixelShuffle,
    time1: Linear,
    time2: Linear,
    class_embed: Linear,
    conv_in: Conv2d,
    down_blocks: Vec<ResBlock>,
    /// The extra blocks after each encoder block ([`DenoiserConfig::extra_blocks`]), finest
    /// level first.
    down_extra: Vec<Vec<ResBlock>>,
    downsamples: Vec<Conv2d>,
    mid: ResBlock,
    up_blocks: Vec<ResBlock>,
    /// The extra blocks after each decoder block, in the order of `up_blocks` (coarsest first).
    up_extra: Vec<Vec<ResBlock>>,
    upsamples: Vec<Conv2d>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    /// Log of the scale that turns relative denoising errors into class logits (trained by the
    /// discriminative term; the classifier's temperature is fitted on val on top of it).
    pub logit_scale: Param<Tensor<1>>,
    /// Frequency count of the sinusoidal timestep features.
    time_features: usize,
    /// Number of entries in the condition vector.
    cond_dim: usize,
    /// Index of the first decoder block that sees the class when the class enters late
    /// ([`DenoiserConfig::class_blocks`]); `None` when every block sees it.
    head_from: Option<usize>,
}

/// What the class-free trunk of a late-conditioned [`Denoiser`] hands its head, for a batch of
/// `b` noised images.
#[derive(Debug, Clone)]
pub struct TrunkOut {
    /// The trunk's last activation, `[b, c, side, side]` (the input of the first head block).
    h: Tensor<4>,
    /// Encoder skips the head still needs, finest first, `[b, c_i, side_i, side_i]` each.
    skips: Vec<Tensor<4>>,
    /// Timestep embedding before the class is added, `[b, embed_dim]`.
    temb: Tensor<2>,
}

impl TrunkOut {
    /// Rows `rows` of every tensor (an image may be repeated, once per class it is scored under).
    fn select(self, rows: Tensor<1, Int>) -> Self {
        Self {
            h: self.h.select(0, rows.clone()),
            skips: self
                .skips
                .into_iter()
                .map(|s| s.select(0, rows.clone()))
                .collect(),
            temb: self.temb.select(0, rows),
        }
    }
}

/// Sinusoidal features of the timesteps, as in the transformer / DDPM papers.
///
/// Output shape `[t.len(), features]`.
pub fn timestep_features(t: &[usize], features: usize, device: &Device) -> Tensor<2> {
    let half = features / 2;
    let mut data = Vec::with_capacity(t.len() * features);
    for &step in t {
        for i in 0..half {
            let freq = (-(10_000f64.ln()) * i as f64 / half as f64).exp();
            data.push((step as f64 * freq).sin() as f32);
        }
        for i in 0..half {
            let freq = (-(10_000f64.ln()) * i as f64 / half as f64).exp();
            data.push((step as f64 * freq).cos() as f32);
        }
    }
    Tensor::from_data(TensorData::new(data, [t.len(), features]), device)
}

impl Denoiser {
    /// Number of entries in the condition vector (classes plus the "no class" token).
    pub fn cond_dim(&self) -> usize {
        self.cond_dim
    }

    /// Predict the noise.
    ///
    /// # Shapes
    /// - `x_t`: `[batch, 3, size, size]` in the model's [-1, 1] range
    /// - `t`: `batch` timesteps
    /// - `cond`: `[batch, num_classes + 1]`, one-hot (or the "no class" one-hot)
    /// - output: `[batch, 3, size, size]`
    pub fn forward(&self, x_t: Tensor<4>, t: &[usize], cond: Tensor<2>) -> Tensor<4> {
        let temb = self.time_embedding(t, &x_t.device());
        match self.head_from {
            Some(_) => self.head(self.trunk_with(x_t, temb), cond),
            None => {
                let emb = self.embedding(temb, cond);
                let (h, mut skips) = self.encode(x_t, emb.clone());
                let h = self.up_path(h, &mut skips, emb, 0..self.up_blocks.len());
                self.output(h)
            }
        }
    }

    /// Predict the noise of `rows` rows made from `images` noised images, each row one image
    /// under one condition. A late-conditioned model ([`DenoiserConfig::class_blocks`]) runs its
    /// trunk once per image and only its head once per row; otherwise this is
    /// [`forward`](Self::forward) on the images repeated into rows.
    ///
    /// # Shapes
    /// - `x_t`: `[images, 3, size, size]`
    /// - `t`: `images` timesteps (a row has its image's)
    /// - `source`: `[rows]`, the image of every row
    /// - `cond`: `[rows, num_classes + 1]`
    /// - output: `[rows, 3, size, size]`
    pub fn forward_shared(
        &self,
        x_t: Tensor<4>,
        t: &[usize],
        source: &[usize],
        cond: Tensor<2>,
    ) -> Tensor<4> {
        let device = x_t.device();
        let rows = Tensor::<1, Int>::from_data(
            TensorData::new(source.iter().map(|&i| i as i64).collect(), [source.len()]),
            &device,
        );
        match self.head_from {
            Some(_) => {
                let temb = self.time_embedding(t, &device);
                self.head(self.trunk_with(x_t, temb).select(rows), cond)
            }
            None => {
                let row_t: Vec<usize> = source.iter().map(|&i| t[i]).collect();
                self.forward(x_t.select(0, rows), &row_t, cond)
            }
        }
    }

    /// Spatially averaged activations of every encoder level and of the middle block,
    /// concatenated: a summary of what the denoiser sees in the noisy crop.
    ///
    /// # Shapes
    /// - `x_t`, `t`, `cond`: as for [`Denoiser::forward`]
    /// - output: `[batch, channels[0] + ... + channels[last] + channels[last]]`
    pub fn features(&self, x_t: Tensor<4>, t: &[usize], cond: Tensor<2>) -> Tensor<2> {
        let temb = self.time_embedding(t, &x_t.device());
        let emb = match self.head_from {
            Some(_) => self.no_class_embedding(temb),
            None => self.embedding(temb, cond),
        };
        let (mid, skips) = self.encode(x_t, emb);
        let pool = |h: Tensor<4>| {
            let [b, c, _, _] = h.dims();
            h.flatten::<3>(2, 3).mean_dim(2).reshape([b, c])
        };
        let mut parts: Vec<Tensor<2>> = skips.into_iter().map(pool).collect();
        parts.push(pool(mid));
        Tensor::cat(parts, 1)
    }

    /// The timestep embedding `[t.len(), embed_dim]`, before the class is added.
    fn time_embedding(&self, t: &[usize], device: &Device) -> Tensor<2> {
        let tf = timestep_features(t, self.time_features, device);
        self.time2.forward(silu(self.time1.forward(tf)))
    }

    /// The block embedding of timestep embeddings `temb` `[b, e]` and conditions `cond`
    /// `[b, num_classes + 1]`: `[b, e]`.
    fn embedding(&self, temb: Tensor<2>, cond: Tensor<2>) -> Tensor<2> {
        silu(temb + self.class_embed.forward(cond))
    }

    /// The block embedding under the "no class" token, `[b, e]`.
    fn no_class_embedding(&self, temb: Tensor<2>) -> Tensor<2> {
        let [b, _] = temb.dims();
        let cond = condition(&vec![None; b], self.cond_dim - 1, &temb.device());
        self.embedding(temb, cond)
    }

    /// The encoder and the middle block under block embedding `emb` `[b, e]`: returns the
    /// middle block's output and the skip tensor of every level (finest first).
    fn encode(&self, x_t: Tensor<4>, emb: Tensor<2>) -> (Tensor<4>, Vec<Tensor<4>>) {
        let mut h = self.conv_in.forward(self.unshuffle.forward(x_t)); // [b, c0, s/p, s/p]
        let mut skips = Vec::with_capacity(self.down_blocks.len());
        for (i, block) in self.down_blocks.iter().enumerate() {
            h = block.forward(h, emb.clone());
            h = run_blocks(&self.down_extra[i], h, &emb);
            skips.push(h.clone());
            if let Some(down) = self.downsamples.get(i) {
                h = down.forward(h); // halve the side
            }
        }
        let h = self.mid.forward(h, emb);
        (h, skips)
    }

    /// Decoder blocks `blocks` (coarsest first) from activation `h`, taking their skips from
    /// the end of `skips`; each block but the finest is followed by its upsampling.
    fn up_path(
        &self,
        mut h: Tensor<4>,
        skips: &mut Vec<Tensor<4>>,
        emb: Tensor<2>,
        blocks: std::ops::Range<usize>,
    ) -> Tensor<4> {
        for j in blocks {
            let skip = skips.pop().expect("one skip per level");
            h = self.up_blocks[j].forward(Tensor::cat(vec![h, skip], 1), emb.clone());
            h = run_blocks(&self.up_extra[j], h, &emb);
            if let Some(up) = self.upsamples.get(j) {
                let [b, c, hh, ww] = h.dims();
                // nearest-neighbour 2x upsampling, then a 3x3 conv
                let h2 = h
                    .reshape([b, c, hh, 1, ww, 1])
                    .repeat_dim(3, 2)
                    .repeat_dim(5, 2)
                    .reshape([b, c, hh * 2, ww * 2]);
                h = up.forward(h2);
            }
        }
        h
    }

    /// The output convolution and the pixel shuffle back to `[b, 3, size, size]`.
    fn output(&self, h: Tensor<4>) -> Tensor<4> {
        let out = self.conv_out.forward(silu(self.norm_out.forward(h))); // [b, 3p², s/p, s/p]
        self.shuffle.forward(out)
    }

    /// The class-free trunk of a late-conditioned model on timestep embeddings `temb`.
    fn trunk_with(&self, x_t: Tensor<4>, temb: Tensor<2>) -> TrunkOut {
        let from = self.head_from.unwrap_or(0);
        let emb = self.no_class_embedding(temb.clone());
        let (h, mut skips) = self.encode(x_t, emb.clone());
        let h = self.up_path(h, &mut skips, emb, 0..from);
        TrunkOut { h, skips, temb }
    }

    /// The class-conditioned head on trunk outputs and conditions `cond` `[b, num_classes + 1]`:
    /// the predicted noise `[b, 3, size, size]`.
    fn head(&self, trunk: TrunkOut, cond: Tensor<2>) -> Tensor<4> {
        let from = self.head_from.unwrap_or(0);
        let TrunkOut { h, mut skips, temb } = trunk;
        let emb = self.embedding(temb, cond);
        let h = self.up_path(h, &mut skips, emb, from..self.up_blocks.len());
        self.output(h)
    }
}

/// Build condition vectors: one-hot rows for `classes`, where `None` means "no class".
///
/// Output shape `[classes.len(), num_classes + 1]`.
pub fn condition(classes: &[Option<usize>], num_classes: usize, device: &Device) -> Tensor<2> {
    let dim = num_classes + 1;
    let mut data = vec![0f32; classes.len() * dim];
    for (row, c) in classes.iter().enumerate() {
        let col = c.map_or(num_classes, |c| c.min(num_classes));
        data[row * dim + col] = 1.0;
    }
    Tensor::from_data(TensorData::new(data, [classes.len(), dim]), device)
}
