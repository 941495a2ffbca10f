//! The residual block: group norm, SiLU and 3x3 convolutions, scaled and shifted by the
//! timestep-and-class embedding (FiLM).

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;

/// A residual block with GroupNorm, SiLU and FiLM conditioning on the embedding.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub(super) norm1: GroupNorm,
    pub(super) conv1: Conv2d,
    pub(super) film: Linear,
    pub(super) norm2: GroupNorm,
    pub(super) conv2: Conv2d,
    pub(super) skip: Option<Conv2d>,
}

pub(super) fn groups(c: usize) -> usize {
    if c.is_multiple_of(8) {
        8
    } else {
        1
    }
}

pub(super) fn conv3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl ResBlock {
    /// A `c -> c` block that starts as the identity: its last convolution is zero, so the
    /// residual branch adds nothing until training moves it.
    pub(super) fn identity(c: usize, embed: usize, device: &Device) -> Self {
        let mut block = Self::new(c, c, embed, device);
        let zero_weight = Tensor::zeros(block.conv2.weight.dims(), device);
        block.conv2.weight = Param::from_tensor(zero_weight);
        block.conv2.bias = Some(Param::from_tensor(Tensor::zeros([c], device)));
        block
    }

    pub(super) fn new(cin: usize, cout: usize, embed: usize, device: &Device) -> Self {
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
    pub(super) fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
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

/// `h` through `blocks` in turn under block embedding `emb` `[b, e]`; `h` keeps its shape.
pub(super) fn run_blocks(blocks: &[ResBlock], h: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
    blocks
        .iter()
        .fold(h, |h, block| block.forward(h, emb.clone()))
}
