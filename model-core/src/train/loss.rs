//! The loss of a step: the denoising MSE plus the discriminative term, whose targets are
//! one-hot or mixed with a calibrated baseline teacher's probabilities (distillation).

use super::batch::Batch;
use super::TrainOptions;
use crate::baseline::{load_baseline_file, BaselineCnn};
use crate::error::{Error, Result};
use crate::schedule::NoiseSchedule;
use crate::unet::{condition, Denoiser};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

/// The discriminative term's teacher (see [`TrainOptions::ce_teacher`]), on the inner device.
pub(super) struct Teacher {
    pub(super) model: BaselineCnn,
    temperature: f32,
    mix: f32,
}

impl Teacher {
    /// Load `opts.ce_teacher` (if any) on `device` and check that it fits the run.
    pub(super) fn load(
        opts: &TrainOptions,
        size: usize,
        device: &Device,
    ) -> Result<Option<Teacher>> {
        if !(0.0..=1.0).contains(&opts.ce_teacher_mix) {
            return Err(Error::Invalid(format!(
                "the teacher's share must lie in [0, 1], not {}",
                opts.ce_teacher_mix
            )));
        }
        let Some(path) = &opts.ce_teacher else {
            return if opts.ce_teacher_mix == 0.0 {
                Ok(None)
            } else {
                Err(Error::Invalid("a teacher's share without a teacher".into()))
            };
        };
        let (model, card) = load_baseline_file(path, device)
            .map_err(|e| Error::Data(format!("teacher {}: {e}", path.display())))?;
        if card.excluded != opts.exclude_class {
            return Err(Error::Invalid(format!(
                "teacher {} leaves out class {:?} but the run leaves out {:?}",
                path.display(),
                card.excluded,
                opts.exclude_class
            )));
        }
        if card.image_size != size || card.config.num_classes != opts.model.num_classes {
            return Err(Error::Invalid(format!(
                "teacher {} takes {}x{} images of {} classes; the run has {size}x{size} and {}",
                path.display(),
                card.image_size,
                card.image_size,
                card.config.num_classes,
                opts.model.num_classes
            )));
        }
        Ok(Some(Teacher {
            model,
            temperature: card.temperature,
            mix: opts.ce_teacher_mix,
        }))
    }

    /// Soft targets of `images` (`[n, 3, size, size]` on the teacher's device) with `labels`
    /// (indices into `classes`): `(1 - mix) * onehot + mix * p`, `p` the teacher's softmax over
    /// `classes` at its temperature. Returns `[n, classes.len()]` on the same device, computed
    /// there: no read-back, so a GPU's queue is not stalled once a step.
    pub(super) fn targets(
        &self,
        images: Tensor<4>,
        labels: &[usize],
        classes: &[usize],
    ) -> Tensor<2> {
        let device = images.device();
        let index = classes.iter().map(|&c| c as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [classes.len()]), &device);
        let logits = self.model.forward(images).select(1, index);
        let p = softmax(logits.div_scalar(self.temperature.max(1e-6)), 1);
        one_hot(labels, classes.len(), &device).mul_scalar(1.0 - self.mix) + p.mul_scalar(self.mix)
    }
}

/// The discriminative term's targets (`[labels.len(), classes.len()]`, on `x0`'s device): one-hot
/// rows of `labels`, or [`Teacher::targets`] of the discriminative images, the last
/// `labels.len()` of a batch's images `x0` (`[images, 3, size, size]`, already on the device).
pub(super) fn ce_targets(
    x0: Tensor<4>,
    labels: &[usize],
    teacher: Option<&Teacher>,
    classes: &[usize],
) -> Tensor<2> {
    let device = x0.device();
    match teacher {
        Some(teacher) => {
            let [images, ..] = x0.dims();
            let ce_images = x0.slice(images - labels.len()..images);
            teacher.targets(ce_images, labels, classes)
        }
        None => one_hot(labels, classes.len(), &device),
    }
}

/// `[labels.len(), k]` one-hot rows on `device`.
pub(super) fn one_hot(labels: &[usize], k: usize, device: &Device) -> Tensor<2> {
    let mut out = vec![0f32; labels.len() * k];
    for (i, &l) in labels.iter().enumerate() {
        out[i * k + l] = 1.0;
    }
    Tensor::<2>::from_data(TensorData::new(out, [labels.len(), k]), device)
}

/// The loss of one batch: the denoising MSE of its first `opts.batch` rows plus `ce_weight` times
/// the cross-entropy of the classifier over its `opts.ce_batch` cells (`k = classes.len()` rows
/// each, one per class of the run) against [`ce_targets`] (with `teacher`, if any). Returns the
/// loss (a scalar, `[1]`, on `device`) and the logged figures `[mse, ce, ce accuracy]` (`[3]`, on
/// the inner device; ce and accuracy 0 without cells).
pub(super) fn batch_loss(
    model: &Denoiser,
    batch: Batch,
    teacher: Option<&Teacher>,
    classes: &[usize],
    opts: &TrainOptions,
    schedule: &NoiseSchedule,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    let inner = device.clone().inner();
    let (k, size) = (classes.len(), opts.model.image_size);
    let images = batch.t.len();
    let rows = batch.source.len();
    let shape = [images, 3, size, size];
    let x0 = Tensor::<4>::from_data(TensorData::new(batch.x0, shape), device);
    let noise = Tensor::<4>::from_data(TensorData::new(batch.noise, shape), device);
    let xt = schedule.add_noise(x0.clone(), noise.clone(), &batch.t);
    let cond = condition(&batch.cond, opts.model.num_classes, device);
    let pred = model.forward_shared(xt, &batch.t, &batch.source, cond);
    let index = batch.source.iter().map(|&i| i as i64).collect();
    let noise = noise.select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(index, [rows]), device),
    );
    let err = (pred - noise)
        .powf_scalar(2.0)
        .reshape([rows, 3 * size * size])
        .mean_dim(1); // [rows, 1]
    let mse = err.clone().slice([0..opts.batch, 0..1]).mean();
    if opts.ce_batch == 0 {
        let logged = Tensor::cat(vec![mse.clone().inner(), Tensor::zeros([2], &inner)], 0);
        return (mse, logged);
    }
    let e = err
        .slice([opts.batch..rows, 0..1])
        .reshape([opts.ce_batch, k]); // [ce, k]
    let rel = e.clone() / e.mean_dim(1).detach();
    let logits = rel.neg() * model.logit_scale.val().exp().reshape([1, 1]);
    let logp = log_softmax(logits.clone(), 1);
    let targets = ce_targets(x0.inner(), &batch.ce_labels, teacher, classes);
    let ce = (logp * targets.autodiff()).sum().neg() / opts.ce_batch as f32;
    let labels = batch.ce_labels.iter().map(|&l| l as i64).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [opts.ce_batch]), &inner);
    let accuracy = logits
        .inner()
        .argmax(1)
        .reshape([opts.ce_batch])
        .equal(labels)
        .float()
        .mean();
    let logged = Tensor::cat(vec![mse.clone().inner(), ce.clone().inner(), accuracy], 0);
    (mse + ce.mul_scalar(opts.ce_weight), logged)
}
