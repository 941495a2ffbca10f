//! Running the classifier: live over a batch of cells ([`ClassifierRun`], a state machine that
//! hands out each round's inputs and takes back the predicted noise), or replayed from a full
//! evaluation cached on val ([`replay`]).

use super::{eliminate, pixel_weights, plan_rounds, CellScores, ClassifierSettings, Round};
use crate::augment::{dihedral, dihedral_inverse};
use crate::preprocess::CellCrop;
use crate::schedule::NoiseSchedule;

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
