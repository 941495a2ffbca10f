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

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::nn::{PixelShuffle, PixelShuffleConfig, PixelUnshuffle, PixelUnshuffleConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

/// Architecture of the [`Denoiser`]; saved beside the weights.
#[derive(Config, Debug, PartialEq)]
pub struct DenoiserConfig {
    /// Side of the square input image in pixels.
    #[config(default = 64)]
    pub image_size: usize,
    /// Number of real classes; the condition vector has `num_classes + 1` entries.
    #[config(default = 8)]
    pub num_classes: usize,
    /// Channels at each resolution level (32x32, 16x16, 8x8 for a 64x64 input).
    #[config(default = "vec![32, 64, 128]")]
    pub channels: Vec<usize>,
    /// Width of the timestep/class embedding.
    #[config(default = 128)]
    pub embed_dim: usize,
    /// Patch size of the initial pixel-unshuffle.
    #[config(default = 2)]
    pub patch: usize,
    /// Decoder blocks, counted from the output (1 to `channels.len()`), that see the class.
    /// The rest of the network sees the "no class" token and is shared by every class of a
    /// noised image. `None`: every block sees the class.
    #[config(default = "None")]
    pub class_blocks: Option<usize>,
    /// Extra residual blocks per level, one entry per level: each level's encoder block and
    /// its decoder block are followed by this many more `channels[i] -> channels[i]` blocks.
    /// `None`: none. A trained denoiser gains them without changing its output through
    /// [`Denoiser::deepen`].
    #[config(default = "None")]
    pub extra_blocks: Option<Vec<usize>>,
}

/// A residual block with GroupNorm, SiLU and FiLM conditioning on the embedding.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    film: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

fn groups(c: usize) -> usize {
    if c.is_multiple_of(8) {
        8
    } else {
        1
    }
}

fn conv3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl ResBlock {
    /// A `c -> c` block that starts as the identity: its last convolution is zero, so the
    /// residual branch adds nothing until training moves it.
    fn identity(c: usize, embed: usize, device: &Device) -> Self {
        let mut block = Self::new(c, c, embed, device);
        let zero_weight = Tensor::zeros(block.conv2.weight.dims(), device);
        block.conv2.weight = Param::from_tensor(zero_weight);
        block.conv2.bias = Some(Param::from_tensor(Tensor::zeros([c], device)));
        block
    }

    fn new(cin: usize, cout: usize, embed: usize, device: &Device) -> Self {
        Self {
            norm1: GroupNormConfig::new(groups(cin), cin).init(device),
            conv1: conv3(cin, cout, 1, device),
            film: LinearConfig::new(embed, 2 * cout).init(device),
            norm2: GroupNormConfig::new(groups(cout), cout).init(device),
            conv2: conv3(cout, cout, 1, device),
            skip: (cin != cout).then(|| Conv2dConfig::new([cin, cout], [1, 1]).init(device)),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, cin, h, w]`, `emb`: `[batch, embed]`
    /// - output: `[batch, cout, h, w]`
    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let [b, c, _, _] = h.dims();
        let film = self.film.forward(emb).reshape([b, 2 * c, 1, 1]); // [b, 2c, 1, 1]
        let scale = film.clone().slice([0..b, 0..c]);
        let shift = film.slice([0..b, c..2 * c]);
        let h = self.norm2.forward(h) * (scale + 1.0) + shift;
        let h = self.conv2.forward(silu(h));
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        h + skip
    }
}

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

impl DenoiserConfig {
    /// Refuse an architecture that cannot run: the image side must split into whole patches,
    /// and the patched side must halve evenly at every level below the first.
    pub fn check(&self) -> crate::Result<()> {
        let bad = |why: String| {
            Err(crate::Error::Invalid(format!(
                "denoiser architecture: {why}"
            )))
        };
        if self.channels.is_empty() || self.channels.contains(&0) {
            return bad(format!(
                "channels {:?} must be one or more non-zero widths",
                self.channels
            ));
        }
        if self.patch == 0 || !self.image_size.is_multiple_of(self.patch) {
            return bad(format!(
                "image size {} is not a multiple of the patch size {}",
                self.image_size, self.patch
            ));
        }
        let side = self.image_size / self.patch;
        let halvings = 1usize << (self.channels.len() - 1);
        if side == 0 || !side.is_multiple_of(halvings) {
            return bad(format!(
                "the patched side {side} ({} / patch {}) must be a non-zero multiple of {halvings} \
                 for {} levels",
                self.image_size,
                self.patch,
                self.channels.len()
            ));
        }
        if let Some(k) = self.class_blocks {
            if k == 0 || k > self.channels.len() {
                return bad(format!(
                    "class_blocks {k} must lie between 1 and the number of levels ({})",
                    self.channels.len()
                ));
            }
        }
        if let Some(extra) = &self.extra_blocks {
            if extra.len() != self.channels.len() {
                return bad(format!(
                    "extra_blocks {extra:?} must have one entry per level ({})",
                    self.channels.len()
                ));
            }
        }
        Ok(())
    }

    /// Extra residual blocks at level `i` (0 when none are configured).
    fn extra_at(&self, i: usize) -> usize {
        self.extra_blocks
            .as_ref()
            .and_then(|e| e.get(i).copied())
            .unwrap_or(0)
    }

    /// Build a freshly initialised denoiser on `device`.
    pub fn init(&self, device: &Device) -> Denoiser {
        let ch = &self.channels;
        let e = self.embed_dim;
        let time_features = 64;
        let pin = 3 * self.patch * self.patch;
        let levels = ch.len();
        let extra = |i: usize| {
            (0..self.extra_at(i))
                .map(|_| ResBlock::new(ch[i], ch[i], e, device))
                .collect::<Vec<_>>()
        };
        let mut down_blocks = Vec::new();
        let mut down_extra = Vec::new();
        let mut downsamples = Vec::new();
        for i in 0..levels {
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            down_blocks.push(ResBlock::new(cin, ch[i], e, device));
            down_extra.push(extra(i));
            if i + 1 < levels {
                downsamples.push(conv3(ch[i], ch[i], 2, device));
            }
        }
        let mid = ResBlock::new(ch[levels - 1], ch[levels - 1], e, device);
        let mut up_blocks = Vec::new();
        let mut up_extra = Vec::new();
        let mut upsamples = Vec::new();
        for i in (0..levels).rev() {
            let cin = if i == levels - 1 { ch[i] } else { ch[i + 1] };
            // The block sees the upsampled path concatenated with the skip of this level.
            up_blocks.push(ResBlock::new(cin + ch[i], ch[i], e, device));
            up_extra.push(extra(i));
            if i > 0 {
                upsamples.push(conv3(ch[i], ch[i], 1, device));
            }
        }
        Denoiser {
            unshuffle: PixelUnshuffleConfig::new(self.patch).init(),
            shuffle: PixelShuffleConfig::new(self.patch).init(),
            time1: LinearConfig::new(time_features, e).init(device),
            time2: LinearConfig::new(e, e).init(device),
            class_embed: LinearConfig::new(self.num_classes + 1, e)
                .with_bias(false)
                .init(device),
            conv_in: conv3(pin, ch[0], 1, device),
            down_blocks,
            down_extra,
            downsamples,
            mid,
            up_blocks,
            up_extra,
            upsamples,
            norm_out: GroupNormConfig::new(groups(ch[0]), ch[0]).init(device),
            conv_out: conv3(ch[0], pin, 1, device),
            logit_scale: Param::from_tensor(Tensor::from_floats([2.3f32], device)),
            time_features,
            cond_dim: self.num_classes + 1,
            head_from: self.class_blocks.map(|k| levels.saturating_sub(k)),
        }
    }

    /// Multiply-adds of one forward pass for one image, times two (FLOPs), convolutions and
    /// linear layers only (norms and activations are a few percent more).
    pub fn flops(&self) -> u64 {
        let ch = &self.channels;
        let levels = ch.len();
        let side0 = self.side0();
        let mut f = self.conv_out_flops() * 2; // conv_in + conv_out (same shape, reversed)
        for i in 0..levels {
            let side = side0 >> i;
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            f += self.res_flops(cin, ch[i], side) + self.extra_flops(i);
            if i + 1 < levels {
                f += conv_flops(ch[i], ch[i], side / 2, 3);
            }
            f += self.up_level_flops(i);
        }
        f += self.res_flops(ch[levels - 1], ch[levels - 1], side0 >> (levels - 1));
        f
    }

    /// FLOPs of the part of [`flops`](Self::flops) that runs once per class: the whole forward
    /// when every block sees the class, else the last `class_blocks` decoder blocks, the
    /// upsampling between them and the output convolution. The rest (the trunk) runs once per
    /// noised image.
    pub fn head_flops(&self) -> u64 {
        let Some(k) = self.class_blocks else {
            return self.flops();
        };
        let k = k.min(self.channels.len());
        self.conv_out_flops() + (0..k).map(|i| self.up_level_flops(i)).sum::<u64>()
    }

    /// Side of the first level: the image side over the patch.
    fn side0(&self) -> u64 {
        (self.image_size / self.patch) as u64
    }

    /// FLOPs of the output convolution (channels[0] to the patch's pixels), the same as the
    /// input convolution's.
    fn conv_out_flops(&self) -> u64 {
        conv_flops(
            self.channels[0],
            3 * self.patch * self.patch,
            self.side0(),
            3,
        )
    }

    /// FLOPs of one [`ResBlock`] from `cin` to `cout` channels at `side`.
    fn res_flops(&self, cin: usize, cout: usize, side: u64) -> u64 {
        conv_flops(cin, cout, side, 3)
            + conv_flops(cout, cout, side, 3)
            + if cin != cout {
                conv_flops(cin, cout, side, 1)
            } else {
                0
            }
            + 2 * self.embed_dim as u64 * 2 * cout as u64
    }

    /// FLOPs of the extra blocks after one block of level `i` (encoder or decoder).
    fn extra_flops(&self, i: usize) -> u64 {
        let c = self.channels[i];
        self.extra_at(i) as u64 * self.res_flops(c, c, self.side0() >> i)
    }

    /// FLOPs of the decoder at level `i`: its block (upsampled path and skip concatenated),
    /// its extra blocks and, below the first level, the upsampling convolution that follows.
    fn up_level_flops(&self, i: usize) -> u64 {
        let ch = &self.channels;
        let side = self.side0() >> i;
        let up_in = if i == ch.len() - 1 { ch[i] } else { ch[i + 1] };
        let up = if i > 0 {
            conv_flops(ch[i], ch[i], side * 2, 3)
        } else {
            0
        };
        self.res_flops(up_in + ch[i], ch[i], side) + self.extra_flops(i) + up
    }
}

/// FLOPs of a `k x k` convolution from `cin` to `cout` channels on a `side x side` output.
fn conv_flops(cin: usize, cout: usize, side: u64, k: u64) -> u64 {
    2 * side * side * cin as u64 * cout as u64 * k * k
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

/// For every input channel of a `fine`-patch unshuffle, the channel of a `coarse`-patch
/// unshuffle of the image downscaled by `fine / coarse` that covers the same sub-pixel (found by
/// unshuffling coordinate images, so it holds whatever channel order burn uses).
fn finer_patch_channels(coarse: usize, fine: usize, device: &Device) -> crate::Result<Vec<usize>> {
    let f = fine / coarse;
    // Value of channel c at pixel (y, x) of one patch: the coarse pixel it lies in, encoded.
    let unshuffled = |patch: usize, scale: usize| -> crate::Result<Vec<usize>> {
        let mut v = Vec::with_capacity(3 * patch * patch);
        for c in 0..3 {
            for y in 0..patch {
                for x in 0..patch {
                    v.push(((c * coarse + y / scale) * coarse + x / scale) as f32);
                }
            }
        }
        let img = Tensor::<4>::from_data(TensorData::new(v, [1, 3, patch, patch]), device);
        let out = PixelUnshuffleConfig::new(patch).init().forward(img);
        let codes = out
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| crate::Error::Weights(format!("{e:?}")))?;
        Ok(codes.into_iter().map(|code| code as usize).collect())
    };
    // Fine channels carry the coordinates of their coarse pixel; coarse ones their own.
    let coarse_codes = unshuffled(coarse, 1)?;
    unshuffled(fine, f)?
        .iter()
        .map(|code| {
            coarse_codes.iter().position(|c| c == code).ok_or_else(|| {
                crate::Error::Invalid(format!("no patch-{coarse} channel for code {code}"))
            })
        })
        .collect()
}

impl Denoiser {
    /// Carry a trained denoiser over to images `f` times larger on a side, with a patch `f`
    /// times larger, so that the UNet's inner levels keep their side and their weights. The new
    /// `conv_in` averages the `f x f` fine pixels that each old input pixel stood for, and the
    /// new `conv_out` repeats each old output pixel over them: on an image upscaled by
    /// repeating pixels, the result equals the old prediction upscaled the same way. Fine-tuning
    /// then teaches it what the finer pixels add.
    ///
    /// `old` is this model's architecture; `new` must equal it but for `image_size` and `patch`,
    /// both multiplied by the same whole factor.
    pub fn to_finer_input(
        self,
        old: &DenoiserConfig,
        new: &DenoiserConfig,
    ) -> crate::Result<Denoiser> {
        new.check()?;
        let f = new.patch / old.patch.max(1);
        let same_rest = DenoiserConfig {
            image_size: old.image_size,
            patch: old.patch,
            ..new.clone()
        } == *old;
        if f < 2 || new.patch != old.patch * f || new.image_size != old.image_size * f || !same_rest
        {
            return Err(crate::Error::Invalid(format!(
                "cannot carry a {}px/patch-{} denoiser over to {}px/patch-{}: only the image \
                 size and the patch may change, both by the same whole factor of 2 or more",
                old.image_size, old.patch, new.image_size, new.patch
            )));
        }
        let device = self.conv_in.weight.device();
        let map = finer_patch_channels(old.patch, new.patch, &device)?;
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(map.iter().map(|&i| i as i64).collect(), [map.len()]),
            &device,
        );
        // Detached: on an autodiff device the new weights must be leaves of their own.
        let pick = |t: Tensor<4>, dim: usize| t.select(dim, index.clone()).detach();
        let mut conv_in = self.conv_in;
        conv_in.weight = Param::from_tensor(pick(conv_in.weight.val(), 1) / (f * f) as f32);
        let mut conv_out = self.conv_out;
        conv_out.weight = Param::from_tensor(pick(conv_out.weight.val(), 0));
        conv_out.bias = conv_out
            .bias
            .map(|b| Param::from_tensor(b.val().select(0, index.clone()).detach()));
        Ok(Denoiser {
            unshuffle: PixelUnshuffleConfig::new(new.patch).init(),
            shuffle: PixelShuffleConfig::new(new.patch).init(),
            conv_in,
            conv_out,
            ..self
        })
    }

    /// Deepen a trained denoiser: add the extra residual blocks that `new` has beyond `old`
    /// ([`DenoiserConfig::extra_blocks`]), each starting as the identity, so that the deeper
    /// model predicts exactly what this one did. Fine-tuning then decides what the new blocks
    /// add: a test of whether more capacity helps that starts from the trained model rather
    /// than from scratch.
    ///
    /// `old` is this model's architecture; `new` must equal it but for `extra_blocks`, with at
    /// least as many blocks at every level.
    pub fn deepen(self, old: &DenoiserConfig, new: &DenoiserConfig) -> crate::Result<Denoiser> {
        new.check()?;
        let levels = old.channels.len();
        let same_rest = DenoiserConfig {
            extra_blocks: old.extra_blocks.clone(),
            ..new.clone()
        } == *old;
        let fewer = (0..levels).any(|i| new.extra_at(i) < old.extra_at(i));
        if !same_rest || fewer {
            return Err(crate::Error::Invalid(format!(
                "cannot deepen a denoiser with extra blocks {:?} to {:?}: only the extra blocks \
                 may change, and no level may lose any",
                old.extra_blocks, new.extra_blocks
            )));
        }
        let device = self.conv_in.weight.device();
        let grow = |mut blocks: Vec<ResBlock>, i: usize| {
            let c = new.channels[i];
            blocks.extend(
                (old.extra_at(i)..new.extra_at(i))
                    .map(|_| ResBlock::identity(c, new.embed_dim, &device)),
            );
            blocks
        };
        let mut model = self;
        model.down_extra = std::mem::take(&mut model.down_extra)
            .into_iter()
            .enumerate()
            .map(|(i, blocks)| grow(blocks, i))
            .collect();
        // `up_extra` runs from the coarsest level down.
        model.up_extra = std::mem::take(&mut model.up_extra)
            .into_iter()
            .enumerate()
            .map(|(j, blocks)| grow(blocks, levels - 1 - j))
            .collect();
        Ok(model)
    }

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

/// `h` through `blocks` in turn under block embedding `emb` `[b, e]`; `h` keeps its shape.
fn run_blocks(blocks: &[ResBlock], h: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
    blocks
        .iter()
        .fold(h, |h, block| block.forward(h, emb.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `b` standard-normal images `[b, 3, side, side]`.
    fn random_images(b: usize, side: usize, device: &Device) -> Tensor<4> {
        Tensor::<4>::random(
            [b, 3, side, side],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        )
    }

    /// A small denoiser (16 px, channels 8 and 16) and two random inputs `[2, 3, 16, 16]`.
    fn tiny(device: &Device) -> (DenoiserConfig, Denoiser, Tensor<4>) {
        let cfg = DenoiserConfig::new()
            .with_image_size(16)
            .with_channels(vec![8, 16]);
        let model = cfg.init(device);
        let x = random_images(2, 16, device);
        (cfg, model, x)
    }

    #[test]
    fn forward_keeps_the_image_shape_and_depends_on_the_class() {
        let device = Device::flex();
        let (cfg, model, x) = tiny(&device);
        let a = model.forward(
            x.clone(),
            &[10, 10],
            condition(&[Some(0), Some(0)], 8, &device),
        );
        assert_eq!(a.dims(), [2, 3, 16, 16]);
        let b = model.forward(x, &[10, 10], condition(&[Some(3), None], 8, &device));
        let diff: f32 = (a - b).abs().sum().into_scalar();
        assert!(diff > 0.0, "the class must change the prediction");
        assert!(cfg.flops() > 0);
    }

    #[test]
    fn a_larger_patch_runs_a_double_resolution_input_at_the_same_inner_side() {
        let device = Device::flex();
        // 32 px with patch 4 runs its first level at 8x8, as 16 px with patch 2 does.
        let cfg = DenoiserConfig::new()
            .with_image_size(32)
            .with_patch(4)
            .with_channels(vec![8, 16]);
        cfg.check().expect("a valid architecture");
        let model = cfg.init(&device);
        let x = random_images(2, 32, &device);
        let y = model.forward(x, &[10, 500], condition(&[Some(1), None], 8, &device));
        assert_eq!(y.dims(), [2, 3, 32, 32]);
        let small = DenoiserConfig::new()
            .with_image_size(16)
            .with_channels(vec![8, 16]);
        // Same inner convolutions; only the 3x3 convolutions in and out see 4x the channels.
        let extra = cfg.flops() - small.flops();
        let conv_io = |pin: u64| 2 * 2 * 8 * 8 * pin * 8 * 9;
        assert_eq!(extra, conv_io(48) - conv_io(12));
    }

    #[test]
    fn a_deepened_denoiser_predicts_what_it_did_and_runs_its_new_blocks() {
        let device = Device::flex();
        for class_blocks in [None, Some(1)] {
            let (old_cfg, _, x) = tiny(&device);
            let old_cfg = old_cfg.with_class_blocks(class_blocks);
            let old = old_cfg.init(&device);
            let new_cfg = old_cfg.clone().with_extra_blocks(Some(vec![1, 2]));
            let new = old.clone().deepen(&old_cfg, &new_cfg).expect("deepened");
            assert_eq!(
                new.num_params(),
                new_cfg.init(&device).num_params(),
                "{class_blocks:?}: the deepened model has the new architecture"
            );
            let cond = condition(&[Some(2), None], 8, &device);
            let want = old.forward(x.clone(), &[30, 400], cond.clone());
            let got = new.forward(x.clone(), &[30, 400], cond.clone());
            let worst: f32 = (want.clone() - got).abs().max().into_scalar();
            assert!(worst < 1e-5, "{class_blocks:?}: output moved by {worst}");
            // Each new block is on the path: once its last convolution is no longer zero, the
            // prediction changes (the finest encoder block, the coarsest decoder block).
            let wake = |block: &mut ResBlock| {
                let dims = block.conv2.weight.dims();
                block.conv2.weight = Param::from_tensor(Tensor::ones(dims, &device) * 0.01);
            };
            for part in 0..2 {
                let mut woken = new.clone();
                match part {
                    0 => wake(&mut woken.down_extra[0][0]),
                    _ => wake(&mut woken.up_extra[0][1]),
                }
                let moved = woken.forward(x.clone(), &[30, 400], cond.clone());
                let diff: f32 = (want.clone() - moved).abs().max().into_scalar();
                assert!(diff > 1e-3, "{class_blocks:?}: block {part} is not run");
            }
            // Each extra block costs one 8- or 16-channel residual block, in the encoder and
            // in the decoder; with the class in the last block, the head pays for its own.
            let res = |c: usize, side: u64| new_cfg.res_flops(c, c, side);
            let extra = res(8, 8) + 2 * res(16, 4);
            assert_eq!(new_cfg.flops() - old_cfg.flops(), 2 * extra);
            if class_blocks.is_some() {
                assert_eq!(new_cfg.head_flops() - old_cfg.head_flops(), res(8, 8));
            }
        }
    }

    #[test]
    fn deepening_refuses_lost_blocks_and_other_changes() {
        let device = Device::flex();
        let (cfg, model, _) = tiny(&device);
        let two = cfg.clone().with_extra_blocks(Some(vec![1, 1]));
        let deep = model.clone().deepen(&cfg, &two).expect("deepened");
        let e = deep.deepen(&two, &cfg).expect_err("fewer blocks");
        assert!(e.to_string().contains("no level may lose"), "{e}");
        let wider = two.clone().with_channels(vec![8, 24]);
        let e = model
            .clone()
            .deepen(&cfg, &wider)
            .expect_err("other change");
        assert!(e.to_string().contains("only the extra blocks"), "{e}");
        let e = cfg
            .with_extra_blocks(Some(vec![1]))
            .check()
            .expect_err("one entry for two levels");
        assert!(e.to_string().contains("one entry per level"), "{e}");
    }

    /// Each pixel repeated `f x f` times: `[b, c, h, w]` to `[b, c, f h, f w]`.
    fn repeat_pixels(x: Tensor<4>, f: usize) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h, 1, w, 1])
            .repeat_dim(3, f)
            .repeat_dim(5, f)
            .reshape([b, c, h * f, w * f])
    }

    #[test]
    fn a_denoiser_carried_to_a_finer_input_predicts_the_upscaled_old_noise() {
        let device = Device::flex();
        let (old_cfg, old, x) = tiny(&device);
        let new_cfg = old_cfg.clone().with_image_size(32).with_patch(4);
        let new = old
            .clone()
            .to_finer_input(&old_cfg, &new_cfg)
            .expect("carried over");
        let cond = condition(&[Some(2), None], 8, &device);
        let want = repeat_pixels(old.forward(x.clone(), &[30, 400], cond.clone()), 2);
        let got = new.forward(repeat_pixels(x.clone(), 2), &[30, 400], cond.clone());
        assert_eq!(got.dims(), [2, 3, 32, 32]);
        let err: f32 = (want - got.clone()).abs().max().into_scalar();
        assert!(
            err < 1e-4,
            "differs from the upscaled old prediction by {err}"
        );
        // On a genuinely finer image the fine pixels matter: not a copy of the old model.
        let fine = random_images(2, 32, &device);
        let moved: f32 = (new.forward(fine, &[30, 400], cond) - got)
            .abs()
            .max()
            .into_scalar();
        assert!(moved > 1e-3);
        // Anything but size and patch changing together is refused.
        for bad in [
            old_cfg.clone().with_image_size(32),
            old_cfg.clone().with_image_size(48).with_patch(4),
            new_cfg.clone().with_embed_dim(64),
        ] {
            let e = old.clone().to_finer_input(&old_cfg, &bad);
            assert!(e.is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn architectures_that_cannot_run_are_refused_with_a_reason() {
        let ok = DenoiserConfig::new();
        ok.check().expect("the default architecture");
        let msg = |c: DenoiserConfig| c.check().expect_err("must be refused").to_string();
        assert!(msg(DenoiserConfig::new().with_patch(3)).contains("not a multiple of the patch"));
        // 64 / 2 = 32 halves at most 5 times; 7 levels need 6 halvings.
        let deep = DenoiserConfig::new().with_channels(vec![8; 7]);
        assert!(msg(deep).contains("multiple of 64"));
        assert!(msg(DenoiserConfig::new().with_channels(vec![])).contains("non-zero widths"));
        assert!(msg(DenoiserConfig::new().with_patch(0)).contains("patch"));
    }

    #[test]
    fn class_blocks_outside_the_decoder_are_refused() {
        for k in [0, 4] {
            let cfg = DenoiserConfig::new().with_class_blocks(Some(k));
            let e = cfg.check().expect_err("must be refused").to_string();
            assert!(e.contains("class_blocks"), "{e}");
        }
        for k in 1..=3 {
            DenoiserConfig::new()
                .with_class_blocks(Some(k))
                .check()
                .expect("a valid late condition");
        }
    }

    /// Largest absolute difference of two tensors.
    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn shared_rows_equal_the_full_forward_on_repeated_images() {
        let device = Device::flex();
        // Rows: image 0 under classes 1, 4 and "no class", image 1 under class 4.
        let source = [0, 0, 0, 1];
        let classes = [Some(1), Some(4), None, Some(4)];
        for class_blocks in [None, Some(1), Some(2)] {
            let cfg = DenoiserConfig::new()
                .with_image_size(16)
                .with_channels(vec![8, 16])
                .with_class_blocks(class_blocks);
            let model = cfg.init(&device);
            let x = random_images(2, 16, &device);
            let cond = condition(&classes, 8, &device);
            let shared = model.forward_shared(x.clone(), &[40, 700], &source, cond.clone());
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0, 0, 1], [4]), &device);
            let full = model.forward(x.select(0, index), &[40, 40, 40, 700], cond);
            assert_eq!(shared.dims(), [4, 3, 16, 16]);
            let d = max_diff(shared.clone(), full);
            assert!(d < 1e-5, "{class_blocks:?}: shared rows differ by {d}");
            // The class still changes the prediction of the same image.
            let by_class = max_diff(shared.clone().narrow(0, 0, 1), shared.narrow(0, 1, 1));
            assert!(
                by_class > 1e-4,
                "{class_blocks:?}: the class changed nothing"
            );
        }
    }

    #[test]
    fn a_late_condition_leaves_the_encoder_class_free() {
        let device = Device::flex();
        let cfg = DenoiserConfig::new()
            .with_image_size(16)
            .with_channels(vec![8, 16])
            .with_class_blocks(Some(1));
        let model = cfg.init(&device);
        let x = random_images(2, 16, &device);
        let a = model.features(
            x.clone(),
            &[10, 10],
            condition(&[Some(0), Some(0)], 8, &device),
        );
        let b = model.features(x, &[10, 10], condition(&[Some(5), None], 8, &device));
        let d: f32 = (a - b).abs().max().into_scalar();
        assert_eq!(d, 0.0, "the encoder saw the class");
    }

    #[test]
    fn the_head_is_the_part_that_runs_once_per_class() {
        let full = DenoiserConfig::new().with_channels(vec![16, 32, 64, 128]);
        assert_eq!(full.head_flops(), full.flops());
        let heads: Vec<u64> = (1..=4)
            .map(|k| full.clone().with_class_blocks(Some(k)).head_flops())
            .collect();
        assert!(heads.windows(2).all(|w| w[0] < w[1]), "{heads:?}");
        assert!(
            heads[3] < full.flops(),
            "the encoder and middle stay in the trunk"
        );
        // The last block alone at 32x32: convs 48->16 and 16->16 (3x3), the 48->16 skip (1x1),
        // its FiLM, and the output conv 16->12.
        let conv = |cin: u64, cout: u64, k: u64| 2 * 32 * 32 * cin * cout * k * k;
        let film = 2 * 128 * 2 * 16;
        let want = conv(48, 16, 3) + conv(16, 16, 3) + conv(48, 16, 1) + film + conv(16, 12, 3);
        assert_eq!(heads[0], want);
    }

    #[test]
    fn features_are_the_spatial_means_of_each_level_and_differ_between_cells() {
        let device = Device::flex();
        let (_, model, x) = tiny(&device);
        let cond = condition(&[None, None], 8, &device);
        let f = model.features(x.clone(), &[10, 10], cond.clone());
        assert_eq!(f.dims(), [2, 8 + 16 + 16]);
        // The last block of columns is the middle block's output averaged over space.
        let temb = model.time_embedding(&[10, 10], &device);
        let (mid, _) = model.encode(x, model.embedding(temb, cond));
        let want = mid.flatten::<3>(2, 3).mean_dim(2).reshape([2, 16]);
        let got = f.clone().slice([0..2, 24..40]);
        let err: f32 = (want - got).abs().max().into_scalar();
        assert!(err < 1e-6, "middle-block columns differ by {err}");
        let rows: f32 = (f.clone().slice([0..1, 0..40]) - f.slice([1..2, 0..40]))
            .abs()
            .sum()
            .into_scalar();
        assert!(rows > 0.0, "two different cells gave the same features");
    }
}
