//! The denoiser's architecture: its checks, its construction and its cost in FLOPs.

use super::block::{conv3, groups};
use super::{Denoiser, ResBlock};
use burn::module::Param;
use burn::nn::{GroupNormConfig, LinearConfig};
use burn::nn::{PixelShuffleConfig, PixelUnshuffleConfig};
use burn::prelude::*;

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
    pub(super) fn extra_at(&self, i: usize) -> usize {
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
    pub(super) fn res_flops(&self, cin: usize, cout: usize, side: u64) -> u64 {
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
