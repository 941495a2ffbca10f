//! Training of the class-conditional denoiser, with a log, periodic checkpoints and exact resume.
//!
//! Each step mixes two objectives on one batched forward pass:
//! - the DDPM loss `|eps - eps_theta(x_t, t, c)|^2` on `batch` images, whose label is replaced by
//!   the "no class" token with probability `p_uncond` (so the model also denoises
//!   unconditionally);
//! - a discriminative term on `ce_batch` images: the same noised image is denoised under every
//!   training class, and the cross-entropy of `softmax(-s * err_c / mean(err))` against the true
//!   class is added with weight `ce_weight`. This trains the denoiser to make the classes'
//!   denoising errors separate, which is what the diffusion classifier reads.
//!
//! All randomness of step `k` comes from a generator seeded by `(seed, k)`, so a run resumed
//! from a checkpoint continues exactly as it would have without the interruption; a new
//! model's weights are drawn from the backend's generator seeded by `seed`, so the same
//! options train the same run on the same backend.

mod batch;
mod init;
mod loss;
mod options;
#[cfg(test)]
mod tests;

pub use batch::{normal_vec, step_rng};
pub use options::TrainOptions;

use batch::{images_by_class, make_batch};
use init::init_from;
use loss::{batch_loss, Teacher};

use crate::checkpoint::{open_run_log, Checkpoint, TrainState};
use crate::dataset::CellSet;
use crate::ema;
use crate::error::{Error, Result};
use crate::schedule::NoiseSchedule;
use crate::unet::Denoiser;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Learning rate at `step`: linear warm-up, then cosine decay to a tenth of the peak.
pub fn learning_rate(step: usize, peak: f64, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = ((step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64).min(1.0);
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
}

/// Train (or resume training) a denoiser in `run_dir` on `data`.
///
/// Writes `run_dir/train.log`, `run_dir/options.json` and checkpoints under `run_dir/ckpt/`.
/// Runs on `device` (flex on the CPU, or wgpu where a GPU is present); checkpoints are the same
/// files whatever the backend, so a run may move between machines.
pub fn train_denoiser(
    data: &CellSet,
    opts: &TrainOptions,
    run_dir: &Path,
    resume: bool,
    device: &Device,
) -> Result<Denoiser> {
    train_until(data, opts, run_dir, resume, device, opts.steps)
}

/// [`train_denoiser`], stopping after step `until` (below `opts.steps`: as if the run had been
/// interrupted there; the tests of exact resume use it).
fn train_until(
    data: &CellSet,
    opts: &TrainOptions,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    until: usize,
) -> Result<Denoiser> {
    let device = device.clone().autodiff();
    let inner = device.clone().inner();
    let schedule = NoiseSchedule::ddpm();
    let classes: Vec<usize> = (0..opts.model.num_classes)
        .filter(|&c| Some(c) != opts.exclude_class)
        .collect();
    let data = match opts.exclude_class {
        Some(ex) => data.filter(|l| l != ex),
        None => data.clone(),
    };
    if data.is_empty() {
        return Err(Error::Data("no training images".into()));
    }
    opts.model.check()?;
    if data.size != opts.model.image_size {
        return Err(Error::Invalid(format!(
            "the training images are {0}x{0} but the model takes {1}x{1}",
            data.size, opts.model.image_size
        )));
    }
    for (name, (lo, hi)) in [
        ("denoising", opts.denoise_t_range),
        ("discriminative", opts.ce_t_range),
    ] {
        if lo >= hi || hi > schedule.steps() {
            return Err(Error::Invalid(format!(
                "{name} timestep range [{lo}, {hi}) is not within the schedule's [0, {})",
                schedule.steps()
            )));
        }
    }
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let ckpt = Checkpoint::new(run_dir.join("ckpt"));
    let (mut model, mut ema_model, mut optim, start) =
        if let Some(state) = ckpt.resume_point(resume)? {
            let model: Denoiser = ckpt.load_module(opts.model.init(&device), "model")?;
            let ema_model: Denoiser = ckpt.load_module(opts.model.init(&inner), "ema")?;
            let optim = AdamConfig::new().init().load_record(ckpt.load_optim()?);
            (model, ema_model, optim, state.step)
        } else {
            // A new model's weights are drawn from the backend's generator: seeded, so that the
            // same options give the same run (the generator is global to the backend).
            device.seed(opts.seed);
            let model = match &opts.init_from {
                Some(src) => init_from(src, &opts.model, &device)
                    .map_err(|e| Error::Data(format!("--init-from {}: {e}", src.display())))?,
                None => opts.model.init(&device),
            };
            let ema_model = model.clone().valid();
            (model, ema_model, AdamConfig::new().init(), 0)
        };
    opts.write(run_dir)?;
    let mut log = open_run_log(run_dir)?;
    let _ = writeln!(
        log,
        "# start at step {start} of {}, {} images, {} classes, {} GFLOP/forward",
        opts.steps,
        data.len(),
        classes.len(),
        opts.model.flops() as f64 / 1e9
    );
    let by_class = opts.ce_balanced.then(|| images_by_class(&data, &classes));
    let teacher = Teacher::load(opts, data.size, &inner)?;
    // Running sums of [mse, ce, ce accuracy] stay on the device and are read once per log line:
    // a host read each step would stall a GPU's queue every step.
    let zero_sums = || Tensor::<1>::zeros([3], &inner);
    let (mut sums, mut count) = (zero_sums(), 0usize);
    let mut timer = Instant::now();
    for step in start..opts.steps.min(until) {
        let mut rng = step_rng(opts.seed, step);
        let batch = make_batch(&data, opts, &classes, by_class.as_deref(), &mut rng);
        let (loss, logged) = batch_loss(
            &model,
            batch,
            teacher.as_ref(),
            &classes,
            opts,
            &schedule,
            &device,
        );
        sums = sums + logged;
        count += 1;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = learning_rate(step, opts.lr, opts.warmup, opts.steps);
        model = optim.step(lr, model, grads);
        ema_model = ema::update(
            ema_model,
            &model.clone().valid(),
            opts.ema_decay.min((1 + step) as f32 / (10 + step) as f32),
        );
        let done = step + 1;
        if done % opts.log_every == 0 || done == opts.steps {
            let mean: Vec<f32> = std::mem::replace(&mut sums, zero_sums())
                .div_scalar(count as f32)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Invalid(format!("training loss read-back: {e:?}")))?;
            let secs = timer.elapsed().as_secs_f64() / count as f64;
            let line = format!(
                "step {done} mse {:.4} ce {:.3} ce_acc {:.3} lr {lr:.2e} s/step {secs:.2}",
                mean[0], mean[1], mean[2]
            );
            println!("{line}");
            let _ = writeln!(log, "{line}");
            count = 0;
            timer = Instant::now();
        }
        if done % opts.checkpoint_every == 0 || done == opts.steps {
            ckpt.save(&model, &ema_model, &optim, &TrainState { step: done })?;
        }
    }
    Ok(ema_model)
}
