//! Exponential moving average of a module's float parameters.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

struct Collect {
    out: Vec<Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(param.val().inner().flatten::<1>(0, D - 1));
    }
}

struct Blend {
    source: std::vec::IntoIter<Tensor<1>>,
    decay: f32,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let current = self
            .source
            .next()
            .expect("EMA and model have the same parameters");
        let decay = self.decay;
        param.map(|ema| {
            let dims = ema.dims();
            ema.mul_scalar(decay) + current.reshape(dims).mul_scalar(1.0 - decay)
        })
    }
}

/// `ema <- decay * ema + (1 - decay) * model`, parameter by parameter (same architecture).
pub fn update<M: Module>(ema: M, model: &M, decay: f32) -> M {
    let mut collect = Collect { out: Vec::new() };
    model.visit(&mut collect);
    let device = ema.devices().into_iter().next();
    let source: Vec<Tensor<1>> = match device {
        Some(d) => collect.out.into_iter().map(|t| t.to_device(&d)).collect(),
        None => collect.out,
    };
    ema.map(&mut Blend {
        source: source.into_iter(),
        decay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn ema_moves_towards_the_model_by_one_minus_decay() {
        let device = Device::flex();
        let model: Linear = LinearConfig::new(2, 2).init(&device);
        let ema: Linear = LinearConfig::new(2, 2).init(&device);
        let weights = |l: &Linear| -> Vec<f32> {
            l.weight.val().into_data().try_to_vec::<f32>().expect("f32")
        };
        let before = weights(&ema);
        let target = weights(&model);
        let ema = update(ema, &model, 0.9);
        let after = weights(&ema);
        for i in 0..4 {
            let want = 0.9 * before[i] + 0.1 * target[i];
            assert!((after[i] - want).abs() < 1e-6);
        }
    }
}
