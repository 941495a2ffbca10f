//! Carrying a trained denoiser over to another architecture without changing what it
//! predicts: a finer input (larger patch) or more residual blocks (deepening).

use super::{Denoiser, DenoiserConfig, ResBlock};
use burn::module::Param;
use burn::nn::{PixelShuffleConfig, PixelUnshuffleConfig};
use burn::prelude::*;

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
}
