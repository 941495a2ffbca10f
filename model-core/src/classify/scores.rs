//! One cell's errors under each condition, and what is read from them: the best class, the
//! gaps behind the probabilities, the paired differences of the test, the conditioning gains
//! of the anomaly score.

use super::ClassifierSettings;

/// Per-cell state of a classification in progress, and its result.
#[derive(Debug, Clone)]
pub struct CellScores {
    /// Whether each class is still in the race.
    pub active: Vec<bool>,
    /// Scaled error (error / stratum scale) of each class per round (`None` where not
    /// evaluated).
    pub errors: Vec<Vec<Option<f32>>>,
    /// Elimination-test weight of each round (the stratum weight of its timestep).
    pub round_weights: Vec<f32>,
    /// Score weight of each round (the score weight of its timestep).
    pub round_score_weights: Vec<f32>,
    /// Per-class per-pixel accumulated weighted squared error over the first `min_rounds`
    /// while the class was active, `[classes][size*size]`.
    pub pixel_errors: Vec<Vec<f32>>,
    /// Rounds summed into each class's [`Self::pixel_errors`] (`[classes]`; fewer than
    /// `min_rounds` for a class screened out early, 0 for an excluded class).
    pub pixel_rounds: Vec<usize>,
    /// The same under the "no class" token, over the "no class" rounds among those first
    /// `min_rounds` (`[size*size]`).
    pub uncond_pixel_errors: Vec<f32>,
    /// Denoiser evaluations spent on this cell.
    pub evals: usize,
    /// Per-class offset of the comparison ([`ClassifierSettings::class_bias`]; zeros if none).
    pub bias: Vec<f32>,
    /// Scaled error under the "no class" token, one per round of
    /// [`ClassifierSettings::uncond_rounds`].
    pub uncond_errors: Vec<f32>,
    /// [`ClassifierSettings::survivor_gap_scale`].
    pub survivor_gap_scale: f32,
    /// Whether each class was screened out ([`ClassifierSettings::screen`]), `[classes]`.
    pub screened: Vec<bool>,
    /// [`ClassifierSettings::screened_gap_scale`].
    pub screened_gap_scale: f32,
}

impl CellScores {
    /// Fresh scores for `classes` classes and `npix` pixels.
    pub fn new(classes: usize, npix: usize) -> Self {
        Self {
            active: vec![true; classes],
            errors: vec![Vec::new(); classes],
            pixel_errors: vec![vec![0.0; npix]; classes],
            pixel_rounds: vec![0; classes],
            uncond_pixel_errors: vec![0.0; npix],
            round_weights: Vec::new(),
            round_score_weights: Vec::new(),
            evals: 0,
            bias: vec![0.0; classes],
            uncond_errors: Vec::new(),
            survivor_gap_scale: 1.0,
            screened: vec![false; classes],
            screened_gap_scale: 1.0,
        }
    }

    /// Fresh scores under `settings`: excluded classes inactive, the class bias applied.
    pub fn for_settings(settings: &ClassifierSettings, classes: usize, npix: usize) -> Self {
        let mut s = Self::new(classes, npix);
        for &c in &settings.excluded {
            s.active[c] = false;
        }
        for (b, v) in s.bias.iter_mut().zip(&settings.class_bias) {
            *b = *v;
        }
        s.survivor_gap_scale = settings.survivor_gap_scale;
        s.screened_gap_scale = settings.screened_gap_scale;
        s
    }

    /// Index of the class with the lowest mean error over the rounds it shares with all
    /// active classes (ties: lowest index).
    pub fn best(&self) -> usize {
        let mut best = 0;
        let mut best_error = f32::INFINITY;
        for c in 0..self.active.len() {
            if !self.active[c] {
                continue;
            }
            let m = self.mean_error(c);
            if m < best_error {
                best_error = m;
                best = c;
            }
        }
        best
    }

    /// Weighted mean scaled error of class `c` over the rounds it was evaluated, less the
    /// class's bias. The weighted sum is divided by the summed weight magnitudes (weights may be
    /// negative: a contrast between timesteps).
    pub fn mean_error(&self, c: usize) -> f32 {
        let (mut sum, mut wsum) = (0f32, 0f32);
        for (e, w) in self.errors[c].iter().zip(&self.round_score_weights) {
            if let Some(e) = e {
                sum += e * w;
                wsum += w.abs();
            }
        }
        if wsum > 0.0 {
            sum / wsum - self.bias[c]
        } else {
            f32::INFINITY
        }
    }

    /// `ln(error under class c / error under no class)` over the rounds that have both (`None`
    /// without such rounds). Conditioning on the right class helps the denoiser, so this is
    /// clearly negative for a typical cell; a cell unlike every class gains little from any
    /// condition, so it is nearer 0. Being a ratio on the same noised image, it is free of how
    /// hard the image is to denoise, which the raw error is not.
    pub fn conditioning_gain(&self, c: usize) -> Option<f32> {
        let (mut cond, mut none) = (0f32, 0f32);
        for (r, u) in self.uncond_errors.iter().enumerate() {
            let e = self.errors.get(c)?.get(r).copied().flatten()?;
            cond += e;
            none += u;
        }
        (none > 0.0 && cond > 0.0).then(|| (cond / none).ln())
    }

    /// The gain profile over `classes`: each one's [`Self::conditioning_gain`], then `ln` of the
    /// mean scaled "no class" error (how hard the cell is to denoise at all), `[classes + 1]`.
    /// `None` without "no class" rounds or where one of `classes` missed them.
    pub fn gain_profile(&self, classes: &[usize]) -> Option<Vec<f32>> {
        let n = self.uncond_errors.len();
        let mean_none = self.uncond_errors.iter().sum::<f32>() / n.max(1) as f32;
        if n == 0 || mean_none <= 0.0 {
            return None;
        }
        let mut profile = classes
            .iter()
            .map(|&c| self.conditioning_gain(c))
            .collect::<Option<Vec<f32>>>()?;
        profile.push(mean_none.ln());
        Some(profile)
    }

    /// Unweighted mean scaled error of class `c` (about 1 for a typical cell of its class).
    pub fn typical_error(&self, c: usize) -> f32 {
        let v: Vec<f32> = self.errors[c].iter().flatten().copied().collect();
        if v.is_empty() {
            f32::INFINITY
        } else {
            v.iter().sum::<f32>() / v.len() as f32
        }
    }

    /// Paired differences `w_r (err_c - err_ref) - |w_r| (bias_c - bias_ref)` under the
    /// elimination-test weights, over rounds where both were evaluated (weights normalised to a
    /// mean magnitude of 1 over all rounds).
    pub fn paired(&self, c: usize, reference: usize) -> Vec<f32> {
        self.weighted_differences(c, reference, &self.round_weights)
    }

    /// Mean paired gap ([`Self::paired`]: elimination-test weights, less the class offsets) of
    /// every active class to the active class lowest by that measure (0 for that one), `[classes]`;
    /// infinite for an inactive class. Unlike [`Self::gaps`] it uses only the positive test
    /// weights, so it ranks the classes sensibly after a single round (a score weight may be
    /// negative). Meant for the rounds before any elimination, when every active class has been
    /// evaluated in every round.
    pub fn screen_gaps(&self) -> Vec<f32> {
        let mean_gap = |c: usize, reference: usize| {
            let d = self.paired(c, reference);
            if d.is_empty() {
                f32::INFINITY
            } else {
                d.iter().sum::<f32>() / d.len() as f32
            }
        };
        let active: Vec<usize> = (0..self.active.len()).filter(|&c| self.active[c]).collect();
        // Over shared rounds a gap is a difference of levels, so the class lowest against any
        // one active class is the lowest against all.
        let reference = active.first().and_then(|&a| {
            active
                .iter()
                .copied()
                .min_by(|&x, &y| mean_gap(x, a).total_cmp(&mean_gap(y, a)))
        });
        (0..self.active.len())
            .map(|c| match reference {
                Some(r) if c == r => 0.0,
                Some(r) if self.active[c] => mean_gap(c, r),
                _ => f32::INFINITY,
            })
            .collect()
    }

    /// [`Self::paired`] under `weights` (one per round).
    fn weighted_differences(&self, c: usize, reference: usize, weights: &[f32]) -> Vec<f32> {
        let shift = self.bias[c] - self.bias[reference];
        let mean_w = if weights.is_empty() {
            1.0
        } else {
            (weights.iter().map(|w| w.abs()).sum::<f32>() / weights.len() as f32).max(1e-12)
        };
        self.errors[c]
            .iter()
            .zip(&self.errors[reference])
            .zip(weights)
            .filter_map(|((a, b), w)| Some((((*a)? - (*b)?) * w - shift * w.abs()) / mean_w))
            .collect()
    }

    /// Mean score-weighted paired gap of every class to the best class (0 for the best itself;
    /// infinite for a class never evaluated beside it, such as an excluded class, so that its
    /// probability is 0).
    ///
    /// An eliminated class was compared with the best over fewer rounds, and under score
    /// weights that are contrasts between timesteps a few rounds can show almost no gap; its gap
    /// is therefore at least its gap under the (positive) test weights that eliminated it. The
    /// gap of a class still in the race is multiplied by `survivor_gap_scale`, that of a class
    /// screened out by `screened_gap_scale`.
    pub fn gaps(&self) -> Vec<f32> {
        let best = self.best();
        let mean = |d: Vec<f32>| {
            if d.is_empty() {
                f32::INFINITY
            } else {
                d.iter().sum::<f32>() / d.len() as f32
            }
        };
        (0..self.active.len())
            .map(|c| {
                let score = mean(self.weighted_differences(c, best, &self.round_score_weights));
                if c == best {
                    0.0
                } else if self.active[c] {
                    score * self.survivor_gap_scale
                } else {
                    let gap = score.max(mean(self.paired(c, best)));
                    if self.screened.get(c).copied().unwrap_or(false) {
                        gap * self.screened_gap_scale
                    } else {
                        gap
                    }
                }
            })
            .collect()
    }
}
