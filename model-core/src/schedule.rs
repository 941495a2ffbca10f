//! DDPM noise schedule (Ho et al. 2020): linear betas, cumulative alphas, forward noising.

use burn::prelude::*;

/// A discrete DDPM schedule with `steps` timesteps and linearly spaced betas.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    /// `alpha_bar[t] = prod_{s<=t} (1 - beta_s)`, for `t` in `0..steps`.
    alpha_bar: Vec<f64>,
}

impl NoiseSchedule {
    /// The standard DDPM schedule: 1000 steps, beta from 1e-4 to 0.02.
    pub fn ddpm() -> Self {
        Self::linear(1000, 1e-4, 0.02)
    }

    /// A schedule of `steps` timesteps whose betas run linearly from `beta_start` to `beta_end`.
    pub fn linear(steps: usize, beta_start: f64, beta_end: f64) -> Self {
        let mut alpha_bar = Vec::with_capacity(steps);
        let mut acc = 1.0;
        for i in 0..steps {
            let frac = if steps > 1 {
                i as f64 / (steps - 1) as f64
            } else {
                0.0
            };
            let beta = beta_start + frac * (beta_end - beta_start);
            acc *= 1.0 - beta;
            alpha_bar.push(acc);
        }
        Self { alpha_bar }
    }

    /// Number of timesteps.
    pub fn steps(&self) -> usize {
        self.alpha_bar.len()
    }

    /// Cumulative signal fraction `alpha_bar[t]`; `t` is clamped into range.
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alpha_bar[t.min(self.alpha_bar.len() - 1)]
    }

    /// Signal-to-noise ratio `alpha_bar / (1 - alpha_bar)` at `t`.
    pub fn snr(&self, t: usize) -> f64 {
        let a = self.alpha_bar(t);
        a / (1.0 - a)
    }

    /// Noise clean images: `x_t = sqrt(ab) x0 + sqrt(1 - ab) eps`, one timestep per sample.
    ///
    /// # Shapes
    /// - `x0`, `noise`: `[batch, c, h, w]`; `t`: `batch` timesteps
    /// - output: `[batch, c, h, w]`
    pub fn add_noise(&self, x0: Tensor<4>, noise: Tensor<4>, t: &[usize]) -> Tensor<4> {
        let device = x0.device();
        let b = t.len();
        let sa: Vec<f32> = t.iter().map(|&t| self.alpha_bar(t).sqrt() as f32).collect();
        let sn: Vec<f32> = t
            .iter()
            .map(|&t| (1.0 - self.alpha_bar(t)).sqrt() as f32)
            .collect();
        let sa = Tensor::<1>::from_data(TensorData::new(sa, [b]), &device).reshape([b, 1, 1, 1]);
        let sn = Tensor::<1>::from_data(TensorData::new(sn, [b]), &device).reshape([b, 1, 1, 1]);
        x0 * sa + noise * sn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_bar_decreases_from_near_one_to_near_zero() {
        let s = NoiseSchedule::ddpm();
        assert_eq!(s.steps(), 1000);
        assert!((s.alpha_bar(0) - (1.0 - 1e-4)).abs() < 1e-12);
        for t in 1..s.steps() {
            assert!(s.alpha_bar(t) < s.alpha_bar(t - 1));
        }
        // Known value of the DDPM schedule: alpha_bar at the last step is about 4.0e-5.
        assert!(s.alpha_bar(999) < 1e-4 && s.alpha_bar(999) > 1e-5);
        assert!(s.snr(10) > s.snr(500));
    }

    #[test]
    fn add_noise_mixes_signal_and_noise_by_alpha_bar() {
        let device = Device::flex();
        let s = NoiseSchedule::ddpm();
        let x0 = Tensor::<4>::ones([2, 1, 2, 2], &device);
        let eps = Tensor::<4>::ones([2, 1, 2, 2], &device).mul_scalar(-1.0);
        let xt = s.add_noise(x0, eps, &[0, 500]);
        let v: Vec<f32> = xt.into_data().try_to_vec::<f32>().expect("f32 data");
        let expect0 = s.alpha_bar(0).sqrt() - (1.0 - s.alpha_bar(0)).sqrt();
        let expect1 = s.alpha_bar(500).sqrt() - (1.0 - s.alpha_bar(500)).sqrt();
        assert!((v[0] as f64 - expect0).abs() < 1e-6);
        assert!((v[4] as f64 - expect1).abs() < 1e-6);
    }
}
