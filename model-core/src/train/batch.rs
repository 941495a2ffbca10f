//! A training step's random draws and the batch they make: denoising rows, then the
//! discriminative term's images repeated once per class.

use super::TrainOptions;
use crate::augment::augment;
use crate::dataset::CellSet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The per-step random generator (seeded by run seed and step index).
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// `n` standard normal samples.
pub fn normal_vec(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// One assembled training batch: each image once, and the rows (image and condition) that
/// the loss scores.
pub(super) struct Batch {
    /// Clean images, `[images, 3, size, size]` flattened.
    pub(super) x0: Vec<f32>,
    /// Their noise, same shape.
    pub(super) noise: Vec<f32>,
    /// Their timesteps.
    pub(super) t: Vec<usize>,
    /// Image of every row.
    pub(super) source: Vec<usize>,
    /// Condition of every row.
    pub(super) cond: Vec<Option<usize>>,
    /// Labels of the discriminative images (rows after the first `batch`), as indices into
    /// the run's training classes.
    pub(super) ce_labels: Vec<usize>,
}

/// Indices of `data`'s images of each of `classes` (in that order), for class-balanced draws;
/// classes without images are left out.
pub(super) fn images_by_class(data: &CellSet, classes: &[usize]) -> Vec<Vec<usize>> {
    classes
        .iter()
        .map(|&c| {
            (0..data.len())
                .filter(|&i| data.labels[i] == c)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// The index of one image for the discriminative term: uniform over images, or, with
/// `by_class` (see [`images_by_class`]), a class uniformly and then one of its images.
fn draw_ce_image(data: &CellSet, by_class: Option<&[Vec<usize>]>, rng: &mut ChaCha8Rng) -> usize {
    match by_class {
        Some(groups) => {
            let group = &groups[rng.random_range(0..groups.len())];
            group[rng.random_range(0..group.len())]
        }
        None => rng.random_range(0..data.len()),
    }
}

/// One step's batch: `opts.batch` denoising rows, then `opts.ce_batch` images repeated once per
/// class in `classes` (images drawn by [`draw_ce_image`] with `by_class`). The timestep ranges
/// of `opts` lie within the schedule ([`train_denoiser`](super::train_denoiser) checks them).
pub(super) fn make_batch(
    data: &CellSet,
    opts: &TrainOptions,
    classes: &[usize],
    by_class: Option<&[Vec<usize>]>,
    rng: &mut ChaCha8Rng,
) -> Batch {
    let size = data.size;
    let n = 3 * size * size;
    let mut b = Batch {
        x0: Vec::new(),
        noise: Vec::new(),
        t: Vec::new(),
        source: Vec::new(),
        cond: Vec::new(),
        ce_labels: Vec::new(),
    };
    for _ in 0..opts.batch {
        let i = rng.random_range(0..data.len());
        b.x0.extend(augment(data.image(i), size, rng));
        b.noise.extend(normal_vec(rng, n));
        b.t.push(rng.random_range(opts.denoise_t_range.0..opts.denoise_t_range.1));
        let uncond = rng.random::<f64>() < opts.p_uncond;
        b.source.push(b.t.len() - 1);
        b.cond
            .push(if uncond { None } else { Some(data.labels[i]) });
    }
    for _ in 0..opts.ce_batch {
        let i = draw_ce_image(data, by_class, rng);
        let img = augment(data.image(i), size, rng);
        let noise = normal_vec(rng, n);
        let t = rng.random_range(opts.ce_t_range.0..opts.ce_t_range.1);
        let label = classes
            .iter()
            .position(|&c| c == data.labels[i])
            .unwrap_or(0);
        b.ce_labels.push(label);
        b.x0.extend(img);
        b.noise.extend(noise);
        b.t.push(t);
        for &c in classes {
            b.source.push(b.t.len() - 1);
            b.cond.push(Some(c));
        }
    }
    b
}
