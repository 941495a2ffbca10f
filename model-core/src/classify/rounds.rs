//! The seeded draws every cell and class share (timestep, noise image, view) and the pixel
//! weights of the error.

use super::ClassifierSettings;
#[cfg(doc)]
use crate::augment::dihedral;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Pixel weights of the error: 1 inside a central disc of radius 0.4 side, falling linearly
/// to 0.2 at the corners (CytoDiffusion masks a central disc). Sums to `size * size`.
pub fn pixel_weights(size: usize, centre: bool) -> Vec<f32> {
    if !centre {
        return vec![1.0; size * size];
    }
    let c = (size as f32 - 1.0) / 2.0;
    let r0 = 0.4 * size as f32;
    let rmax = c * std::f32::consts::SQRT_2;
    let mut w: Vec<f32> = (0..size * size)
        .map(|i| {
            let (x, y) = ((i % size) as f32 - c, (i / size) as f32 - c);
            let r = (x * x + y * y).sqrt();
            if r <= r0 {
                1.0
            } else {
                1.0 - 0.8 * ((r - r0) / (rmax - r0)).min(1.0)
            }
        })
        .collect();
    let s: f32 = w.iter().sum();
    let k = (size * size) as f32 / s;
    w.iter_mut().for_each(|v| *v *= k);
    w
}

/// The shared draws of one round.
#[derive(Debug, Clone)]
pub struct Round {
    /// Timestep.
    pub t: usize,
    /// Stratum index (for its weight).
    pub stratum: usize,
    /// Noise image, CHW, `3 * size * size`.
    pub noise: Vec<f32>,
    /// Dihedral view the denoiser sees (0: as is; see [`dihedral`]).
    pub view: u8,
}

/// The seeded plan of rounds: one timestep per stratum in a shuffled order, and noise images.
pub fn plan_rounds(settings: &ClassifierSettings, size: usize) -> Vec<Round> {
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let (lo, hi) = settings.t_range;
    let k = settings.max_rounds.max(1);
    let width = (hi - lo) as f64 / k as f64;
    let mut order: Vec<usize> = (0..k).collect();
    order.shuffle(&mut rng);
    order
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let a = lo as f64 + s as f64 * width;
            let t = (a + rng.random::<f64>() * width).floor() as usize;
            let noise = (0..3 * size * size)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            Round {
                t: t.clamp(lo, hi - 1),
                stratum: s,
                noise,
                view: if settings.views { (i % 8) as u8 } else { 0 },
            }
        })
        .collect()
}
