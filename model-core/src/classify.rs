//! The diffusion classifier (Li et al. 2023; CytoDiffusion, Deltadahl et al. 2025).
//!
//! A cell is classified by how well each class condition denoises it. For round `r` a timestep
//! `t_r` (one per stratum of the classifier's timestep range, in a seeded order) and a noise
//! image `eps_r` are drawn once and shared by every class and every cell, so the comparison
//! between classes is paired. Each round evaluates all still-active classes of all cells in one
//! batched forward pass. After `min_rounds`, a class is dropped as soon as a one-sided paired
//! t-test says its error exceeds the best class's; before that, a screen fitted on val may drop
//! classes that trail far behind ([`ClassifierSettings::screen`]); the run stops when one class
//! is left or `max_rounds` is reached.
//!
//! The classifier is written as a state machine ([`ClassifierRun`]): it hands out the noised
//! inputs of a round and takes back the predicted noise, so the caller decides how to run the
//! denoiser (synchronously on the CPU, or with an async readback on WebGPU).

use crate::augment::{dihedral, dihedral_inverse};
use crate::preprocess::CellCrop;
use crate::schedule::NoiseSchedule;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Settings of the diffusion classifier; stored in the model card beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierSettings {
    /// Timestep range `[lo, hi)` the rounds are drawn from.
    pub t_range: (usize, usize),
    /// Maximum rounds (= strata of the timestep range).
    pub max_rounds: usize,
    /// Rounds every class gets before any elimination.
    pub min_rounds: usize,
    /// Weight of each stratum in the elimination test (fitted on val, positive; 1.0 before
    /// fitting).
    pub stratum_weights: Vec<f32>,
    /// Weight of each stratum in the final score ([`CellScores::mean_error`], the gaps and so
    /// the probabilities), fitted by logistic regression on val; may be negative (a contrast
    /// between timesteps). Empty (cards from before it existed): `stratum_weights`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub score_weights: Vec<f32>,
    /// Typical error of the true class in each stratum (fitted on val; 1.0 before fitting):
    /// errors are divided by it so rounds at different timesteps are comparable.
    pub stratum_scale: Vec<f32>,
    /// Seed of the shared noise and timestep order.
    pub seed: u64,
    /// Critical value multiplier: 1.0 uses the one-sided 1 % Student-t quantile.
    pub test_strictness: f32,
    /// Weight pixels towards the centre of the crop, where the cell is.
    pub centre_weighting: bool,
    /// Classes the model was trained without; they never enter the race.
    #[serde(default)]
    pub excluded: Vec<usize>,
    /// Per-class offset subtracted from the class's scaled error when classes are compared
    /// (fitted on val: some conditions denoise every cell a little better than others); empty
    /// means none. It shifts the comparison only, not [`CellScores::typical_error`].
    #[serde(default)]
    pub class_bias: Vec<f32>,
    /// Show round `r` the noised cell in dihedral view `r mod 8` (a rotation or flip; the model
    /// was trained on all eight), so the rounds also average over the model's
    /// orientation-dependent errors. Cards written before this setting existed have it off.
    #[serde(default)]
    pub views: bool,
    /// Rounds (from the first) in which every cell is also denoised with the "no class" token,
    /// one more evaluation per round, for [`CellScores::conditioning_gain`]; 0: none. At most
    /// `min_rounds` is useful (every class is still in the race there).
    #[serde(default)]
    pub uncond_rounds: usize,
    /// Factor on the gap of a class still in the race at the end ([`CellScores::gaps`]),
    /// fitted on val with the temperature. Such a gap is the full score contrast over every
    /// round, which tells classes apart more surely than the partial gap of an eliminated
    /// class; one temperature for both left the undecided cells underconfident. 1: none.
    #[serde(default = "one")]
    pub survivor_gap_scale: f32,
    /// Whether the score weights and class offsets were fitted with every class weighing
    /// equally ([`crate::calibrate::fit_weights_and_bias`]): the decision rule for balanced
    /// accuracy (a uniform class prior) rather than for the val split's class proportions.
    /// Cards written before this setting existed have it off.
    #[serde(default)]
    pub balanced_fit: bool,
    /// Screening before the paired test can act (it needs 3 rounds): after round `j + 1`
    /// (fewer than `min_rounds`), drop every class whose [`CellScores::screen_gaps`] exceeds
    /// `screen[j]` (`None`: no screen after that round). Fitted on val
    /// ([`crate::calibrate::fit_screen`]). Never inside the "no class" rounds: the anomaly
    /// score's gain profile needs every class there. Empty (cards written before it existed):
    /// no screening, every class gets `min_rounds` rounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screen: Vec<Option<f32>>,
    /// The share of correctly classified val cells whose true class the screen may drop, which
    /// each threshold of `screen` was fitted for (0: no screen).
    #[serde(default)]
    pub screen_miss: f32,
    /// Factor on the gap of a class screened out ([`CellScores::gaps`]), fitted on val with the
    /// temperature: a gap of one or two rounds may say more or less about how unlikely the class
    /// is than a longer one (1.0 was fitted for the shipped model). 1: none.
    #[serde(default = "one")]
    pub screened_gap_scale: f32,
    /// How many classes every screen keeps whatever their gaps: the lowest by
    /// [`CellScores::screen_gaps`], the leading class first (see [`screen_kept`]). 1: the
    /// leader alone (cards written before this setting existed); 2: the runner-up too, so that
    /// a close second is always decided by the paired test.
    #[serde(default = "one_class")]
    pub screen_keep: usize,
}

fn one() -> f32 {
    1.0
}

fn one_class() -> usize {
    1
}

impl ClassifierSettings {
    /// The elimination-test weight and the score weight of `stratum` (1.0 where unfitted).
    pub fn weights_of(&self, stratum: usize) -> (f32, f32) {
        let test = self.stratum_weights.get(stratum).copied().unwrap_or(1.0);
        let score = if self.score_weights.is_empty() {
            test
        } else {
            self.score_weights.get(stratum).copied().unwrap_or(1.0)
        };
        (test, score)
    }

    /// These settings with `n` "no class" rounds if they have none (a card from before the
    /// conditioning gain, evaluated for it). Settings that have some keep theirs: a card's
    /// anomaly statistics were fitted on gain profiles over exactly its own rounds, and more
    /// rounds would also move its screen.
    pub fn or_uncond_rounds(self, n: usize) -> Self {
        if self.uncond_rounds > 0 {
            self
        } else {
            Self {
                uncond_rounds: n,
                ..self
            }
        }
    }
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        Self {
            t_range: (50, 600),
            max_rounds: 12,
            min_rounds: 3,
            stratum_weights: vec![1.0; 12],
            score_weights: Vec::new(),
            stratum_scale: vec![1.0; 12],
            seed: 2025,
            test_strictness: 1.0,
            centre_weighting: true,
            excluded: Vec::new(),
            class_bias: Vec::new(),
            views: false,
            uncond_rounds: 0,
            survivor_gap_scale: 1.0,
            balanced_fit: false,
            screen: Vec::new(),
            screen_miss: 0.0,
            screened_gap_scale: 1.0,
            screen_keep: 1,
        }
    }
}

/// One-sided 1 % critical values of Student's t for 1..=30 degrees of freedom (standard table;
/// kept here rather than pulling a statistics crate with linear algebra into the wasm build).
#[allow(clippy::approx_constant)] // 2.718 is the quantile for 11 degrees of freedom, not e
const T_CRIT_01: [f32; 30] = [
    31.821, 6.965, 4.541, 3.747, 3.365, 3.143, 2.998, 2.896, 2.821, 2.764, 2.718, 2.681, 2.650,
    2.624, 2.602, 2.583, 2.567, 2.552, 2.539, 2.528, 2.518, 2.508, 2.500, 2.492, 2.485, 2.479,
    2.473, 2.467, 2.462, 2.457,
];

/// Critical value of the one-sided 1 % paired t-test with `n` pairs.
pub fn t_critical(n: usize) -> f32 {
    if n < 2 {
        return f32::INFINITY;
    }
    T_CRIT_01[(n - 2).min(T_CRIT_01.len() - 1)]
}

/// Whether paired differences `d = err_c - err_best` show class `c` is worse than the best.
pub fn clearly_worse(diffs: &[f32], strictness: f32) -> bool {
    let n = diffs.len();
    if n < 2 {
        return false;
    }
    let mean = diffs.iter().sum::<f32>() / n as f32;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f32>() / (n - 1) as f32;
    if var <= 0.0 {
        return mean > 0.0;
    }
    let t = mean / (var / n as f32).sqrt();
    t > t_critical(n) * strictness
}

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

/// After `rounds_done` rounds: drop every class the paired test shows worse than the best, or,
/// before the test can act (fewer than `min_rounds`), every class past the round's screen
/// ([`ClassifierSettings::screen`]).
pub fn eliminate(s: &mut CellScores, rounds_done: usize, settings: &ClassifierSettings) {
    if rounds_done < settings.min_rounds {
        screen(s, rounds_done, settings);
        return;
    }
    let best = s.best();
    for c in 0..s.active.len() {
        if c != best && s.active[c] && clearly_worse(&s.paired(c, best), settings.test_strictness) {
            s.active[c] = false;
        }
    }
}

/// Whether a screen may follow round `rounds_done` at all: the "no class" rounds are over (the
/// gain profile needs every class in them) and the paired test does not act yet.
pub fn screen_may_follow(rounds_done: usize, settings: &ClassifierSettings) -> bool {
    rounds_done >= 1 && rounds_done >= settings.uncond_rounds && rounds_done < settings.min_rounds
}

/// The screen that applies after `rounds_done` rounds: one fitted for that round, where
/// [`screen_may_follow`] allows one.
pub fn screen_after(rounds_done: usize, settings: &ClassifierSettings) -> Option<f32> {
    if !screen_may_follow(rounds_done, settings) {
        return None;
    }
    settings.screen.get(rounds_done - 1).copied().flatten()
}

/// `[classes]` whether a screen keeps each class whatever its gap: the `keep` classes lowest by
/// `gaps` ([`CellScores::screen_gaps`]; ties go to the lower index), at least the leader (gap 0),
/// never a class with an infinite gap (inactive).
pub fn screen_kept(gaps: &[f32], keep: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..gaps.len()).filter(|&c| gaps[c].is_finite()).collect();
    order.sort_by(|&a, &b| gaps[a].total_cmp(&gaps[b]).then(a.cmp(&b)));
    let mut kept = vec![false; gaps.len()];
    for &c in order.iter().take(keep.max(1)) {
        kept[c] = true;
    }
    kept
}

/// Drop every class whose [`CellScores::screen_gaps`] exceeds the screen after `rounds_done`
/// rounds (none where [`screen_after`] has none), except the classes [`screen_kept`] keeps
/// (`screen_keep`; the reference class, gap 0, always stays).
fn screen(s: &mut CellScores, rounds_done: usize, settings: &ClassifierSettings) {
    let Some(limit) = screen_after(rounds_done, settings) else {
        return;
    };
    let gaps = s.screen_gaps();
    let kept = screen_kept(&gaps, settings.screen_keep);
    for (c, g) in gaps.iter().enumerate() {
        if s.active[c] && !kept[c] && *g > limit.max(0.0) {
            s.active[c] = false;
            s.screened[c] = true;
        }
    }
}

/// Replay a classification from a full evaluation (every class in every round, raw errors
/// `raw[class][round]` in plan order, and the raw "no class" errors `uncond` of the first
/// rounds, possibly none): since rounds share fixed seeded draws, the result is exactly what a
/// run with `settings` (same seed and rounds) would have produced, up to its evaluation count.
/// Used to fit and tune the classifier on val from one pass of the denoiser. `excluded`
/// classes never enter the race.
pub fn replay(
    raw: &[Vec<f32>],
    uncond: &[f32],
    strata: &[usize],
    settings: &ClassifierSettings,
) -> CellScores {
    let classes = raw.len();
    let mut s = CellScores::for_settings(settings, classes, 0);
    for (r, &stratum) in strata.iter().enumerate() {
        if s.active.iter().filter(|a| **a).count() <= 1 {
            break;
        }
        let scale = settings.stratum_scale.get(stratum).copied().unwrap_or(1.0);
        let (test_w, score_w) = settings.weights_of(stratum);
        s.round_weights.push(test_w);
        s.round_score_weights.push(score_w);
        for (c, row) in raw.iter().enumerate() {
            let e = &mut s.errors[c];
            e.resize(r, None);
            if s.active[c] {
                e.push(Some(row[r] / scale));
                s.evals += 1;
            }
        }
        if let Some(u) = uncond.get(r).filter(|_| r < settings.uncond_rounds) {
            s.uncond_errors.push(u / scale);
            s.evals += 1;
        }
        eliminate(&mut s, r + 1, settings);
    }
    s
}

/// A batch of cells being classified.
#[derive(Debug)]
pub struct ClassifierRun {
    settings: ClassifierSettings,
    schedule: NoiseSchedule,
    rounds: Vec<Round>,
    cells: Vec<CellCrop>,
    weights: Vec<f32>,
    /// Scores per cell.
    pub scores: Vec<CellScores>,
    round: usize,
    classes: usize,
    /// Rows of the last round handed out: `(cell, class)`.
    pending: Vec<(usize, usize)>,
}

/// The inputs of one batched denoiser evaluation: each noised image once, and the rows that
/// score it, one per condition.
#[derive(Debug, Clone)]
pub struct RoundInputs {
    /// Noised images, `[images, 3, size, size]` flattened.
    pub x_t: Vec<f32>,
    /// Timestep of every image.
    pub t: Vec<usize>,
    /// Image of every row, in ascending order.
    pub source: Vec<usize>,
    /// Class condition of every row.
    pub classes: Vec<usize>,
}

impl RoundInputs {
    /// Number of denoiser rows (evaluations).
    pub fn rows(&self) -> usize {
        self.classes.len()
    }
}

impl ClassifierRun {
    /// Start classifying `cells` (all of one size) among `classes` classes.
    pub fn new(cells: Vec<CellCrop>, classes: usize, settings: ClassifierSettings) -> Self {
        let size = cells.first().map_or(1, |c| c.size);
        let npix = size * size;
        let rounds = plan_rounds(&settings, size);
        let weights = pixel_weights(size, settings.centre_weighting);
        let scores = cells
            .iter()
            .map(|_| CellScores::for_settings(&settings, classes, npix))
            .collect();
        Self {
            settings,
            schedule: NoiseSchedule::ddpm(),
            rounds,
            cells,
            weights,
            scores,
            round: 0,
            classes,
            pending: Vec::new(),
        }
    }

    /// Whether every cell has finished.
    pub fn is_done(&self) -> bool {
        self.round >= self.rounds.len()
            || self
                .scores
                .iter()
                .all(|s| s.active.iter().filter(|a| **a).count() <= 1)
    }

    /// Round index about to be run (progress).
    pub fn round(&self) -> usize {
        self.round
    }

    /// The inputs of the next round, or `None` when finished.
    pub fn next_inputs(&mut self) -> Option<RoundInputs> {
        if self.is_done() {
            return None;
        }
        let r = &self.rounds[self.round];
        let ab = self.schedule.alpha_bar(r.t);
        let (sa, sn) = (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32);
        self.pending.clear();
        let mut x_t = Vec::new();
        let mut source = Vec::new();
        let mut classes = Vec::new();
        for (i, cell) in self.cells.iter().enumerate() {
            if self.scores[i].active.iter().filter(|a| **a).count() <= 1 {
                continue;
            }
            let mut noised: Vec<f32> = cell
                .pixels
                .iter()
                .zip(&r.noise)
                .map(|(x, e)| sa * x + sn * e)
                .collect();
            if r.view != 0 {
                noised = dihedral(&noised, cell.size, r.view);
            }
            let image = x_t.len() / noised.len().max(1);
            x_t.extend_from_slice(&noised);
            for c in 0..self.classes {
                if self.scores[i].active[c] {
                    self.pending.push((i, c));
                    source.push(image);
                    classes.push(c);
                }
            }
            if self.round < self.settings.uncond_rounds {
                // Class index `classes` is the "no class" token of the denoiser's condition.
                self.pending.push((i, self.classes));
                source.push(image);
                classes.push(self.classes);
            }
        }
        let t = vec![r.t; source.last().map_or(0, |s| s + 1)];
        Some(RoundInputs {
            x_t,
            t,
            source,
            classes,
        })
    }

    /// Take the predicted noise of the round handed out by [`next_inputs`](Self::next_inputs),
    /// `[rows, 3, size, size]` flattened, update errors and eliminate classes.
    pub fn absorb(&mut self, predicted: &[f32]) {
        let r = &self.rounds[self.round];
        let npix = self.weights.len();
        let n = 3 * npix;
        let (test_w, score_w) = self.settings.weights_of(r.stratum);
        let scale = self
            .settings
            .stratum_scale
            .get(r.stratum)
            .copied()
            .unwrap_or(1.0);
        let mut touched = vec![false; self.scores.len()];
        let collect_pixels = self.round < self.settings.min_rounds;
        let size = self.cells.first().map_or(1, |c| c.size);
        for (row, &(cell, class)) in self.pending.iter().enumerate() {
            let pred = &predicted[row * n..(row + 1) * n];
            // The prediction is in the round's view: turn it back to the cell's frame.
            let unviewed;
            let pred = if r.view != 0 {
                unviewed = dihedral(pred, size, dihedral_inverse(r.view));
                &unviewed[..]
            } else {
                pred
            };
            let mut total = 0f32;
            let s = &mut self.scores[cell];
            // The class's error map, or the "no class" map for an unconditional row.
            if collect_pixels {
                if let Some(n) = s.pixel_rounds.get_mut(class) {
                    *n += 1;
                }
            }
            let mut map = collect_pixels.then(|| match s.pixel_errors.get_mut(class) {
                Some(map) => map,
                None => &mut s.uncond_pixel_errors,
            });
            for p in 0..npix {
                let mut e = 0f32;
                for ch in 0..3 {
                    let d = pred[ch * npix + p] - r.noise[ch * npix + p];
                    e += d * d;
                }
                let we = e * self.weights[p];
                total += we;
                if let Some(map) = map.as_mut() {
                    map[p] += we;
                }
            }
            let err = total / n as f32 / scale;
            s.evals += 1;
            if class == self.classes {
                s.uncond_errors.push(err);
                continue;
            }
            if !touched[cell] {
                touched[cell] = true;
                s.round_weights.resize(self.round, 0.0);
                s.round_weights.push(test_w);
                s.round_score_weights.resize(self.round, 0.0);
                s.round_score_weights.push(score_w);
            }
            let errs = &mut s.errors[class];
            errs.resize(self.round, None);
            errs.push(Some(err));
        }
        self.round += 1;
        for s in &mut self.scores {
            eliminate(s, self.round, &self.settings);
        }
    }

    /// Settings in use.
    pub fn settings(&self) -> &ClassifierSettings {
        &self.settings
    }

    /// Finish: the scores of every cell, in input order.
    pub fn into_scores(self) -> Vec<CellScores> {
        self.scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(size: usize, v: f32) -> CellCrop {
        CellCrop {
            size,
            pixels: vec![v; 3 * size * size],
        }
    }

    /// A fake denoiser: class `good` predicts the noise exactly, the others add an error of
    /// `gap * class distance` plus round-dependent jitter shared by all classes.
    fn run_fake(gap: f32, good: usize, settings: ClassifierSettings) -> CellScores {
        let size = 4;
        let mut run = ClassifierRun::new(vec![cell(size, 0.1)], 8, settings);
        let plan = plan_rounds(run.settings(), size);
        let mut round = 0;
        while let Some(inputs) = run.next_inputs() {
            let n = 3 * size * size;
            let mut out = Vec::new();
            for &c in &inputs.classes {
                let jitter = 0.3 + 0.2 * ((round * 7 % 5) as f32);
                let extra = gap * (c as f32 - good as f32).abs();
                out.extend(plan[round].noise.iter().take(n).map(|e| e + jitter + extra));
            }
            run.absorb(&out);
            round += 1;
        }
        run.into_scores().remove(0)
    }

    #[test]
    fn a_clearly_worse_class_is_dropped_early() {
        let s = run_fake(0.5, 2, ClassifierSettings::default());
        assert_eq!(s.best(), 2);
        assert_eq!(
            s.active.iter().filter(|a| **a).count(),
            1,
            "only the true class survives"
        );
        // Classes far from the truth go right after the first 3 rounds; the neighbours, whose
        // gap is smaller, take a few rounds more. Far fewer than 8 x 12 evaluations in all.
        assert_eq!(
            s.errors[7].iter().flatten().count(),
            3,
            "class 7 is dropped after 3 rounds"
        );
        assert!(s.evals < 8 * 6, "{} evaluations", s.evals);
    }

    #[test]
    fn no_class_rounds_cost_one_evaluation_each_and_leave_the_race_alone() {
        let plain = run_fake(0.5, 2, ClassifierSettings::default());
        let with = run_fake(
            0.5,
            2,
            ClassifierSettings {
                uncond_rounds: 3,
                ..ClassifierSettings::default()
            },
        );
        assert_eq!(with.evals, plain.evals + 3);
        assert_eq!(
            with.errors, plain.errors,
            "the classes' errors are unchanged"
        );
        assert_eq!(with.active, plain.active);
        assert_eq!(with.uncond_errors.len(), 3);
        assert_eq!(plain.conditioning_gain(2), None);
        assert_eq!(
            with.pixel_errors, plain.pixel_errors,
            "the classes' pixel maps are unchanged"
        );
        // The "no class" pixel map holds its own errors: larger than the true class's
        // everywhere (the fake's "no class" row is farther from the noise), absent without
        // "no class" rounds.
        assert!(plain.uncond_pixel_errors.iter().all(|e| *e == 0.0));
        assert!(with
            .uncond_pixel_errors
            .iter()
            .zip(&with.pixel_errors[2])
            .all(|(u, c)| u > c));
        // The fake's "no class" row (index 8) is 6 class distances from the truth: every class
        // helps, the true class most.
        let gain = |c| with.conditioning_gain(c).expect("gain");
        assert!(
            gain(2) < gain(3) && gain(3) < 0.0,
            "{} {}",
            gain(2),
            gain(3)
        );
    }

    #[test]
    fn dihedral_views_turn_the_input_and_turn_the_prediction_back() {
        let size = 4;
        let pixels: Vec<f32> = (0..3 * size * size)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let settings = ClassifierSettings {
            views: true,
            test_strictness: f32::INFINITY,
            ..ClassifierSettings::default()
        };
        let plan = plan_rounds(&settings, size);
        assert_eq!(
            plan.iter().map(|r| r.view).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3]
        );
        let cell = CellCrop { size, pixels };
        let mut run = ClassifierRun::new(vec![cell.clone()], 8, settings);
        let schedule = NoiseSchedule::ddpm();
        for round in &plan {
            let inputs = run.next_inputs().expect("a round");
            let ab = schedule.alpha_bar(round.t);
            let noised: Vec<f32> = cell
                .pixels
                .iter()
                .zip(&round.noise)
                .map(|(x, e)| ab.sqrt() as f32 * x + (1.0 - ab).sqrt() as f32 * e)
                .collect();
            let n = noised.len();
            let seen = dihedral(&noised, size, round.view);
            assert!(inputs.x_t[..n]
                .iter()
                .zip(&seen)
                .all(|(a, b)| (a - b).abs() < 1e-5));
            // Class 5 predicts the noise exactly, in the frame it was shown; the rest are off.
            let truth = dihedral(&round.noise, size, round.view);
            let out: Vec<f32> = inputs
                .classes
                .iter()
                .flat_map(|&c| truth.iter().map(move |e| if c == 5 { *e } else { e + 0.5 }))
                .collect();
            run.absorb(&out);
        }
        let s = run.into_scores().remove(0);
        assert_eq!(s.best(), 5);
        assert!(s.errors[5].iter().flatten().all(|e| *e < 1e-10));
        assert!(s.pixel_errors[5].iter().all(|e| *e < 1e-10));
    }

    #[test]
    fn a_round_holds_each_noised_image_once_and_maps_its_rows_to_it() {
        let size = 4;
        let n = 3 * size * size;
        let cells = vec![cell(size, 0.1), cell(size, -0.4)];
        let settings = ClassifierSettings {
            uncond_rounds: 1,
            ..ClassifierSettings::default()
        };
        let mut run = ClassifierRun::new(cells, 8, settings);
        let inputs = run.next_inputs().expect("a first round");
        assert_eq!(inputs.x_t.len(), 2 * n, "two cells, two images");
        assert_eq!(inputs.t.len(), 2);
        // Eight classes and the "no class" row for each cell.
        assert_eq!(inputs.rows(), 18);
        assert_eq!(inputs.source[..9], [0; 9]);
        assert_eq!(inputs.source[9..], [1; 9]);
        assert_eq!(inputs.classes[8], 8, "the ninth row is the no-class token");
        assert!(inputs.x_t[..n] != inputs.x_t[n..], "the cells' own images");
    }

    #[test]
    fn an_excluded_class_gets_no_probability() {
        // Excluded classes are never evaluated. A gap of 0 for them would tie them with the
        // best class (and the first in class order would be "predicted").
        let settings = ClassifierSettings {
            excluded: vec![2],
            ..ClassifierSettings::default()
        };
        let s = run_fake(0.5, 4, settings);
        let gaps = s.gaps();
        assert!(
            gaps[2].is_infinite(),
            "gap of the excluded class: {}",
            gaps[2]
        );
        let p = crate::diagnosis::probabilities(&gaps, 0.05);
        assert_eq!(p[2], 0.0);
        let top = (0..8)
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .expect("classes");
        assert_eq!(top, 4);
    }

    #[test]
    fn gaps_use_score_weights_survivor_scale_and_the_eliminating_test() {
        // Three classes, four rounds. Score weights contrast rounds 0-1 against 2-3; test
        // weights are all 1. Class 2 was eliminated after round 1 (two rounds).
        let mut s = CellScores::new(3, 0);
        s.errors = vec![
            vec![Some(1.0), Some(1.0), Some(1.0), Some(1.0)],
            vec![Some(1.2), Some(1.2), Some(1.1), Some(1.1)],
            vec![Some(1.5), Some(1.5), None, None],
        ];
        s.round_weights = vec![1.0; 4];
        s.round_score_weights = vec![1.0, 1.0, -0.5, -0.5];
        s.active = vec![true, true, false];
        assert_eq!(s.best(), 0);
        // Class 1 under the score: (0.2 + 0.2 - 0.05 - 0.05) / 4 rounds / mean |w| 0.75.
        let g = s.gaps();
        assert!((g[1] - 0.1).abs() < 1e-6, "{g:?}");
        // Class 2: its score gap over its two rounds (0.5 / 0.75 = 0.667) against the test's
        // 0.5: the larger.
        assert!((g[2] - 0.5 / 0.75).abs() < 1e-5, "{g:?}");
        s.round_score_weights = vec![1.0, -1.0, 1.0, 1.0];
        // Now its score gap over rounds 0-1 is 0: the test's gap (0.5) stands.
        assert!((s.gaps()[2] - 0.5).abs() < 1e-6, "{:?}", s.gaps());
        // A survivor's gap is scaled; an eliminated class's is not.
        let before = s.gaps();
        s.survivor_gap_scale = 3.0;
        let after = s.gaps();
        assert!((after[1] - 3.0 * before[1]).abs() < 1e-6 && after[2] == before[2]);
        assert_eq!(after[0], 0.0);
    }

    #[test]
    fn identical_classes_are_not_dropped() {
        let s = run_fake(0.0, 0, ClassifierSettings::default());
        assert_eq!(
            s.active.iter().filter(|a| **a).count(),
            8,
            "no class is worse than another"
        );
        assert_eq!(s.evals, 8 * 12);
    }

    /// A live run of the fake under `settings`, and the replay of the fake's full run (no
    /// elimination, no screen, the same "no class" rounds) under the same settings.
    fn live_and_replayed(settings: ClassifierSettings) -> (CellScores, CellScores) {
        let full = run_fake(
            0.5,
            2,
            ClassifierSettings {
                test_strictness: f32::INFINITY,
                screen: Vec::new(),
                ..settings.clone()
            },
        );
        assert_eq!(
            full.evals,
            96 + settings.uncond_rounds,
            "no elimination in a full run"
        );
        let strata: Vec<usize> = plan_rounds(&settings, 4)
            .iter()
            .map(|r| r.stratum)
            .collect();
        let raw: Vec<Vec<f32>> = full
            .errors
            .iter()
            .map(|e| e.iter().map(|v| v.expect("full")).collect())
            .collect();
        let replayed = replay(&raw, &full.uncond_errors, &strata, &settings);
        (run_fake(0.5, 2, settings), replayed)
    }

    #[test]
    fn replay_of_a_full_run_matches_a_live_run() {
        let (live, replayed) = live_and_replayed(ClassifierSettings::default());
        assert_eq!(replayed.evals, live.evals);
        assert_eq!(replayed.active, live.active);
        assert_eq!(replayed.gaps(), live.gaps());
    }

    #[test]
    fn replay_with_no_class_rounds_matches_a_live_run() {
        let (live, replayed) = live_and_replayed(ClassifierSettings {
            uncond_rounds: 3,
            ..ClassifierSettings::default()
        });
        assert_eq!(replayed.evals, live.evals);
        assert_eq!(replayed.uncond_errors, live.uncond_errors);
        assert_eq!(replayed.conditioning_gain(2), live.conditioning_gain(2));
    }

    /// Default settings with a screen of `limit` after rounds 1 and 2 and `uncond` "no class"
    /// rounds.
    fn screened(limit: f32, uncond: usize) -> ClassifierSettings {
        ClassifierSettings {
            screen: vec![Some(limit), Some(limit)],
            screen_miss: 0.01,
            uncond_rounds: uncond,
            ..ClassifierSettings::default()
        }
    }

    #[test]
    fn a_screen_drops_far_classes_after_one_round_and_saves_evaluations() {
        // The fake's first round has jitter 0.3, so class c's scaled error is
        // (0.3 + 0.5 |c - 2|)^2: gaps to class 2 of 0.55, 1.6, 3.15, 5.2 and 7.75 at distances 1
        // to 5. A screen of 2.5 drops the classes 3 or more away after one round; after two
        // (jitter 0.7 in the second) the mean gaps at distances 1 and 2 are 0.75 and 2.0.
        let plain = run_fake(0.5, 2, ClassifierSettings::default());
        let s = run_fake(0.5, 2, screened(2.5, 0));
        assert_eq!(s.best(), 2);
        for c in [5, 6, 7] {
            assert_eq!(s.errors[c].iter().flatten().count(), 1, "class {c}");
            assert!(s.screened[c] && !s.active[c], "class {c}");
        }
        for c in [0, 1, 3, 4] {
            assert!(!s.screened[c], "class {c} is within the screen");
            assert!(s.errors[c].iter().flatten().count() >= 3, "class {c}");
        }
        assert!(s.evals < plain.evals, "{} vs {}", s.evals, plain.evals);
        assert_eq!(
            plain.screened,
            vec![false; 8],
            "no screen without thresholds"
        );
        // A screened class keeps a gap at least its screen, so a small probability.
        let gaps = s.gaps();
        assert!(gaps[5] > 2.5 && gaps[7] > gaps[5], "{gaps:?}");
        // Its pixel map holds the one round it was evaluated in.
        assert_eq!(s.pixel_rounds[7], 1);
        assert_eq!(s.pixel_rounds[2], 3);
    }

    #[test]
    fn identical_classes_are_never_screened() {
        // Every class denoises equally well: gaps of 0, not above even a zero screen.
        let s = run_fake(0.0, 2, screened(0.0, 0));
        assert!(s.screened.iter().all(|x| !x));
        assert!(s.errors.iter().all(|e| e.iter().flatten().count() >= 3));
    }

    #[test]
    fn no_screen_inside_the_no_class_rounds() {
        // The gain profile needs every class in the "no class" rounds: with 3 of them (all of
        // `min_rounds`) no screen applies; with 2, only the one after round 2.
        let plain = run_fake(0.5, 2, screened(2.0, 3));
        assert!(plain.screened.iter().all(|x| !x));
        assert!(plain.errors.iter().all(|e| e.iter().flatten().count() >= 3));
        let two = run_fake(0.5, 2, screened(2.0, 2));
        assert_eq!(two.errors[7].iter().flatten().count(), 2);
        assert!(two.screened[7]);
        assert_eq!(screen_after(1, &screened(2.0, 2)), None);
        assert_eq!(screen_after(2, &screened(2.0, 2)), Some(2.0));
        assert_eq!(
            screen_after(3, &screened(2.0, 0)),
            None,
            "the paired test's rounds"
        );
    }

    #[test]
    fn a_screen_can_keep_the_runner_up() {
        // A zero screen after round 1 drops every class but the leader, class 2; kept
        // two deep, it keeps the closest rival too (classes 1 and 3 tie: the lower index).
        let alone = run_fake(0.5, 2, screened(0.0, 0));
        let two = run_fake(
            0.5,
            2,
            ClassifierSettings {
                screen_keep: 2,
                ..screened(0.0, 0)
            },
        );
        assert_eq!((alone.best(), two.best()), (2, 2));
        assert!(alone.screened[1] && alone.screened[3]);
        assert!(!two.screened[1] && !two.screened[2], "{:?}", two.screened);
        assert!(two.screened[3] && two.screened[7]);
        assert!(
            two.errors[1].iter().flatten().count() >= 3,
            "the paired test decides"
        );
        assert!(two.evals > alone.evals);
        // Ties go to the lower index; inactive (infinite) classes are never kept.
        let inf = f32::INFINITY;
        assert_eq!(
            screen_kept(&[0.4, 0.0, 0.4, inf], 2),
            vec![true, true, false, false]
        );
        assert_eq!(screen_kept(&[0.4, 0.0, inf], 0), vec![false, true, false]);
        assert_eq!(screen_kept(&[0.0, inf], 3), vec![true, false]);
    }

    #[test]
    fn no_class_rounds_are_added_only_to_settings_without_them() {
        // A card fitted with 2 "no class" rounds keeps them, and with them the screen after
        // round 2 (3 rounds would leave that screen no round to act in).
        let fitted = screened(2.0, 2).or_uncond_rounds(3);
        assert_eq!(fitted.uncond_rounds, 2);
        assert_eq!(screen_after(2, &fitted), Some(2.0));
        let run = run_fake(0.5, 2, screened(2.0, 2).or_uncond_rounds(3));
        assert_eq!(run.uncond_errors.len(), 2);
        // One without them (from before the conditioning gain) gets the rounds asked for.
        let old = ClassifierSettings::default().or_uncond_rounds(3);
        assert_eq!(old.uncond_rounds, 3);
        assert_eq!(run_fake(0.5, 2, old).uncond_errors.len(), 3);
    }

    #[test]
    fn replay_with_a_screen_matches_a_live_run() {
        let (live, replayed) = live_and_replayed(screened(2.0, 1));
        assert!(live.screened.iter().any(|x| *x));
        assert_eq!(replayed.evals, live.evals);
        assert_eq!(replayed.active, live.active);
        assert_eq!(replayed.screened, live.screened);
        assert_eq!(replayed.gaps(), live.gaps());
    }

    #[test]
    fn paired_test_needs_consistent_evidence() {
        assert!(clearly_worse(&[0.5, 0.52, 0.49, 0.51], 1.0));
        assert!(!clearly_worse(&[0.5, -0.4, 0.3, -0.2], 1.0));
        assert!(!clearly_worse(&[0.5], 1.0), "one pair is never enough");
    }

    #[test]
    fn rounds_are_seeded_and_stratified() {
        let s = ClassifierSettings::default();
        let a = plan_rounds(&s, 4);
        let b = plan_rounds(&s, 4);
        assert_eq!(
            a.iter().map(|r| r.t).collect::<Vec<_>>(),
            b.iter().map(|r| r.t).collect::<Vec<_>>()
        );
        assert_eq!(a[0].noise, b[0].noise);
        let mut strata: Vec<usize> = a.iter().map(|r| r.stratum).collect();
        strata.sort();
        assert_eq!(strata, (0..12).collect::<Vec<_>>());
        for r in &a {
            let width = (s.t_range.1 - s.t_range.0) as f64 / 12.0;
            let lo = s.t_range.0 as f64 + r.stratum as f64 * width;
            assert!(r.t as f64 >= lo.floor() && (r.t as f64) < lo + width + 1.0);
        }
        let other = plan_rounds(&ClassifierSettings { seed: 1, ..s }, 4);
        assert_ne!(a[0].noise, other[0].noise);
    }

    #[test]
    fn pixel_weights_favour_the_centre_and_average_one() {
        let w = pixel_weights(16, true);
        let mean: f32 = w.iter().sum::<f32>() / w.len() as f32;
        assert!((mean - 1.0).abs() < 1e-4);
        assert!(w[8 * 16 + 8] > w[0]);
    }
}
