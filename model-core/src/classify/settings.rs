//! Settings of the diffusion classifier, stored in the model card beside the weights.

#[cfg(doc)]
use super::{screen_kept, CellScores};
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
