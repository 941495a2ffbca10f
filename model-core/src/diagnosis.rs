//! From a cell's diffusion scores to a [`Diagnosis`]: calibrated class probabilities,
//! confidence, uncertainty, anomaly score, triage decision and the per-pixel uncertainty maps.

use crate::classes::CLASSES;
use crate::classify::{CellScores, ClassifierSettings};
use crate::colour_gate::ColourGate;
use crate::focus_gate::FocusGate;
use crate::preprocess::CellCrop;
use crate::unet::DenoiserConfig;
use serde::{Deserialize, Serialize};

/// What to do with a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Triage {
    /// Confident and typical: accepted without review.
    Auto,
    /// Ambiguous between classes: an expert should look.
    Review,
    /// Unlike any training class: an expert must look.
    Anomaly,
}

impl Triage {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Triage::Auto => "auto",
            Triage::Review => "review",
            Triage::Anomaly => "anomaly",
        }
    }
}

/// What the anomaly z-score standardises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// `ln` of the predicted class's typical error (cards from before the conditioning gain).
    #[default]
    TypicalError,
    /// [`CellScores::conditioning_gain`] of the predicted class: needs "no class" rounds
    /// (`ClassifierSettings::uncond_rounds`).
    ConditioningGain,
    /// Mahalanobis distance of the cell's [`CellScores::gain_profile`] (every class's
    /// conditioning gain and the log "no class" error) from the predicted class's val profiles
    /// ([`AnomalyStats::profile`]): a cell can be unlike its class in how *every* condition
    /// denoises it, not only its own. Needs "no class" rounds within the first `min_rounds`,
    /// where every class is still evaluated.
    GainProfile,
}

/// A Gaussian over the gain profiles (`[d]`) of one class's correctly classified val cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileGaussian {
    /// Mean profile, `[d]`.
    pub mean: Vec<f32>,
    /// Inverse of the shrunk covariance, `[d * d]` row-major.
    pub precision: Vec<f32>,
}

impl ProfileGaussian {
    /// Mahalanobis distance of `x` (`[d]`) from the mean (`None` if `x` is not `[d]`).
    pub fn distance(&self, x: &[f32]) -> Option<f32> {
        let d = self.mean.len();
        if x.len() != d || self.precision.len() != d * d {
            return None;
        }
        let diff: Vec<f32> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        let q: f32 = (0..d)
            .map(|i| {
                diff[i]
                    * (0..d)
                        .map(|j| self.precision[i * d + j] * diff[j])
                        .sum::<f32>()
            })
            .sum();
        Some(q.max(0.0).sqrt())
    }
}

/// Per-class statistics on val, for the anomaly z-score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyStats {
    /// The value standardised.
    #[serde(default)]
    pub kind: AnomalyKind,
    /// Mean of the value over correctly classified val cells, per class.
    pub mean: Vec<f32>,
    /// Standard deviation of the same, per class.
    pub std: Vec<f32>,
    /// [`AnomalyKind::GainProfile`]: the classes whose gains make the profile, in order (the
    /// log "no class" error follows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile_classes: Vec<usize>,
    /// [`AnomalyKind::GainProfile`]: per class, the Gaussian of its val profiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<ProfileGaussian>,
}

/// The value `stats` standardise, for a cell predicted as `class` (`None` where the scores
/// lack it: no "no class" rounds for the conditioning gain or the gain profile).
pub fn anomaly_value(scores: &CellScores, class: usize, stats: &AnomalyStats) -> Option<f32> {
    match stats.kind {
        AnomalyKind::TypicalError => Some(scores.typical_error(class).max(1e-9).ln()),
        AnomalyKind::ConditioningGain => scores.conditioning_gain(class),
        AnomalyKind::GainProfile => stats
            .profile
            .get(class)?
            .distance(&scores.gain_profile(&stats.profile_classes)?),
    }
}

/// Triage thresholds fitted on val.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriagePolicy {
    /// Cells at or above this confidence (and not anomalous) are auto-accepted.
    pub auto_min_confidence: f32,
    /// Cells with an anomaly score above this are flagged `anomaly`.
    pub anomaly_threshold: f32,
    /// Accuracy the auto-accepted val cells were required to reach.
    pub target_accuracy: f32,
}

impl TriagePolicy {
    /// The decision for a cell of top-class `confidence` and `anomaly` score: anomalies first,
    /// then auto-acceptance, else review.
    pub fn decide(&self, confidence: f32, anomaly: f32) -> Triage {
        if anomaly > self.anomaly_threshold {
            Triage::Anomaly
        } else if confidence >= self.auto_min_confidence {
            Triage::Auto
        } else {
            Triage::Review
        }
    }
}

/// Everything needed beside the weights to turn denoiser outputs into diagnoses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Class names in model order.
    pub classes: Vec<String>,
    /// Architecture of the denoiser.
    pub denoiser: DenoiserConfig,
    /// Classifier settings (timesteps, weights, test).
    pub classifier: ClassifierSettings,
    /// Softmax temperature on the negative error gaps.
    pub temperature: f32,
    /// Anomaly statistics.
    pub anomaly: AnomalyStats,
    /// Triage thresholds.
    pub triage: TriagePolicy,
    /// SHA-256 (hex) of the weights file this card belongs to: the browser fetches and caches
    /// the weights under this key, and loading refuses weights that do not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    /// The colour gate fitted on val (`calibrate`, or `cytolens colour-gate` for a calibrated
    /// model); a cell it flags is triaged `anomaly`. Absent in cards from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour_gate: Option<ColourGate>,
    /// The focus gate fitted on val (`calibrate`, or `cytolens focus-gate` for a calibrated
    /// model); a cell it flags is never auto-accepted. Absent in cards from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus_gate: Option<FocusGate>,
}

impl ModelCard {
    /// Refuse a card whose parts do not fit together.
    pub fn check(&self) -> crate::error::Result<()> {
        let k = self.denoiser.num_classes;
        if self.anomaly.mean.len() != k || self.anomaly.std.len() != k {
            return Err(crate::error::Error::Weights(format!(
                "model card: anomaly statistics for {} classes, the model has {k}",
                self.anomaly.mean.len()
            )));
        }
        let bad = |m: String| Err(crate::error::Error::Weights(format!("model card: {m}")));
        let (a, settings) = (&self.anomaly, &self.classifier);
        if a.kind != AnomalyKind::TypicalError && settings.uncond_rounds == 0 {
            return bad(format!(
                "the anomaly score ({:?}) needs \"no class\" rounds, but uncond_rounds is 0",
                a.kind
            ));
        }
        if a.kind == AnomalyKind::GainProfile {
            let d = a.profile_classes.len() + 1;
            if settings.uncond_rounds > settings.min_rounds {
                return bad(format!(
                    "the gain profile needs every class in the \"no class\" rounds, but \
                     uncond_rounds {} > min_rounds {}",
                    settings.uncond_rounds, settings.min_rounds
                ));
            }
            if a.profile_classes
                .iter()
                .any(|&c| c >= k || settings.excluded.contains(&c))
            {
                return bad(format!(
                    "gain profile classes {:?} do not fit the model",
                    a.profile_classes
                ));
            }
            if a.profile.len() != k
                || a.profile
                    .iter()
                    .any(|g| g.mean.len() != d || g.precision.len() != d * d)
            {
                return bad(format!(
                    "the gain profile needs {k} Gaussians of dimension {d}"
                ));
            }
        }
        if let Some(g) = &self.colour_gate {
            let f = crate::colour_gate::FEATURES;
            if g.gaussian.mean.len() != f || g.gaussian.precision.len() != f * f {
                return bad(format!("the colour gate needs a Gaussian of dimension {f}"));
            }
        }
        if let Some(g) = &self.focus_gate {
            if !g.threshold.is_finite() || !(0.5..=1.0).contains(&g.quantile) {
                return bad(format!(
                    "the focus gate needs a finite threshold and a quantile from 0.5 to 1, got {} and {}",
                    g.threshold, g.quantile
                ));
            }
        }
        Ok(())
    }

    /// An uncalibrated card for a freshly trained denoiser.
    pub fn uncalibrated(denoiser: DenoiserConfig) -> Self {
        let k = denoiser.num_classes;
        Self {
            name: "cytolens-diffusion".into(),
            version: "0.1.0".into(),
            classes: CLASSES.iter().map(|s| s.to_string()).collect(),
            denoiser,
            classifier: ClassifierSettings::default(),
            temperature: 0.05,
            anomaly: AnomalyStats {
                kind: AnomalyKind::TypicalError,
                mean: vec![0.0; k],
                std: vec![1.0; k],
                profile_classes: Vec::new(),
                profile: Vec::new(),
            },
            triage: TriagePolicy {
                auto_min_confidence: 0.9,
                anomaly_threshold: 4.0,
                target_accuracy: 0.995,
            },
            weights_sha256: None,
            colour_gate: None,
            focus_gate: None,
        }
    }
}

/// Per-pixel uncertainty maps of a cell at model resolution (`size * size`, row-major).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UncertaintyMap {
    /// Side in pixels.
    pub size: usize,
    /// Counterfactual map: runner-up's minus predicted class's denoising error per pixel.
    /// Positive where the predicted class explains the pixel better, negative where the
    /// runner-up does.
    pub counterfactual: Vec<f32>,
    /// Per-pixel standard deviation of the denoising error across all classes: where the
    /// classes disagree about the cell.
    pub disagreement: Vec<f32>,
}

/// The model's answer for one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Predicted class index.
    pub class: usize,
    /// Calibrated probability of each class (model order).
    pub probs: Vec<f32>,
    /// Probability of the predicted class.
    pub confidence: f32,
    /// Normalised entropy of `probs`, 0 (certain) to 1 (uniform).
    pub uncertainty: f32,
    /// Anomaly z-score: higher means less like any training class.
    pub anomaly: f32,
    /// Triage decision.
    pub triage: Triage,
    /// Second most probable class.
    pub runner_up: usize,
    /// Denoiser evaluations spent.
    pub evals: usize,
    /// Noise draws (rounds) the cell took part in: the passes of a late-conditioned denoiser's
    /// shared trunk.
    pub rounds: usize,
    /// [`CellScores::conditioning_gain`] of the predicted class, where the settings ask for
    /// "no class" rounds (`uncond_rounds`); nearer 0 means the class helped the denoiser less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditioning_gain: Option<f32>,
    /// Uncertainty heatmaps.
    pub map: UncertaintyMap,
    /// The colour gate's score of the cell's crop (its largest standardised colour moment
    /// against the val cells'), when the card has a gate ([`apply_colour_gate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<f32>,
    /// The gate flagged the crop's colours as outside the val cells' (then `triage` is
    /// `anomaly`).
    #[serde(default)]
    pub unusual_colour: bool,
    /// The crop's sharpness ([`crate::focus_gate::sharpness`]), when the card has a focus
    /// gate ([`apply_focus_gate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f32>,
    /// The focus gate found the crop blurrier than the val cells (then `triage` is not
    /// `auto`).
    #[serde(default)]
    pub out_of_focus: bool,
}

/// Score a diagnosed cell's crop (`[3, size, size]`) with the card's focus gate: the
/// sharpness is recorded, and a crop blurrier than the val cells' goes to review instead of
/// being auto-accepted (an anomaly stays an anomaly).
pub fn apply_focus_gate(d: &mut Diagnosis, gate: &FocusGate, crop: &CellCrop) {
    let score = crate::focus_gate::sharpness(crop);
    d.sharpness = Some(score);
    d.out_of_focus = gate.flags(score);
    if d.out_of_focus && d.triage == Triage::Auto {
        d.triage = Triage::Review;
    }
}

/// Score a diagnosed cell's crop (`[3, size, size]`) with the card's colour gate: the score is
/// recorded, and a crop whose colours lie outside the val cells' is triaged `anomaly`, however
/// confident its class.
pub fn apply_colour_gate(d: &mut Diagnosis, gate: &ColourGate, crop: &CellCrop) {
    let score = gate.score(crop);
    d.colour = Some(score);
    d.unusual_colour = gate.flags(score);
    if d.unusual_colour {
        d.triage = Triage::Anomaly;
    }
}

/// Softmax of `-gap / temperature`.
pub fn probabilities(gaps: &[f32], temperature: f32) -> Vec<f32> {
    let t = temperature.max(1e-6);
    let logits: Vec<f32> = gaps.iter().map(|g| -g / t).collect();
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| (l - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Normalised entropy in [0, 1].
pub fn normalised_entropy(p: &[f32]) -> f32 {
    let h: f32 = p.iter().filter(|v| **v > 0.0).map(|v| -v * v.ln()).sum();
    h / (p.len() as f32).ln()
}

/// Anomaly z-score of a cell predicted as `class`: higher means less like the class. Infinite
/// when the scores lack the value (a card asking for the conditioning gain without "no class"
/// rounds, which [`ModelCard::check`] refuses at load).
pub fn anomaly_score(scores: &CellScores, class: usize, stats: &AnomalyStats) -> f32 {
    match anomaly_value(scores, class, stats) {
        Some(v) => (v - stats.mean[class]) / stats.std[class].max(1e-6),
        None => f32::INFINITY,
    }
}

/// Turn a cell's scores into its diagnosis under `card`.
pub fn diagnose(scores: &CellScores, card: &ModelCard, size: usize) -> Diagnosis {
    let gaps = scores.gaps();
    let probs = probabilities(&gaps, card.temperature);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let (class, runner_up) = (order[0], order.get(1).copied().unwrap_or(order[0]));
    let confidence = probs[class];
    let anomaly = anomaly_score(scores, class, &card.anomaly);
    let triage = card.triage.decide(confidence, anomaly);
    Diagnosis {
        class,
        uncertainty: normalised_entropy(&probs),
        probs,
        confidence,
        anomaly,
        triage,
        runner_up,
        evals: scores.evals,
        rounds: scores.round_weights.len(),
        conditioning_gain: scores.conditioning_gain(class),
        map: uncertainty_map(scores, class, runner_up, size),
        colour: None,
        unusual_colour: false,
        sharpness: None,
        out_of_focus: false,
    }
}

/// The counterfactual and disagreement maps from the per-pixel errors of the first rounds, each
/// class's map averaged over the rounds it was evaluated in ([`CellScores::pixel_rounds`]: a
/// class screened out after one round has one), so that classes are compared per round.
/// Classes never evaluated (excluded) take no part in the disagreement. `[size*size]` each.
pub fn uncertainty_map(
    scores: &CellScores,
    class: usize,
    runner_up: usize,
    size: usize,
) -> UncertaintyMap {
    let npix = size * size;
    let rounds = |c: usize| scores.pixel_rounds.get(c).copied().unwrap_or(0);
    let mean_map = |c: usize| -> Vec<f32> {
        let n = rounds(c).max(1) as f32;
        scores.pixel_errors[c].iter().map(|e| e / n).collect()
    };
    let (top, second) = (mean_map(class), mean_map(runner_up));
    let counterfactual = (0..npix).map(|p| second[p] - top[p]).collect();
    let evaluated: Vec<Vec<f32>> = (0..scores.pixel_errors.len())
        .filter(|&c| rounds(c) > 0)
        .map(mean_map)
        .collect();
    let k = evaluated.len().max(1) as f32;
    let disagreement = (0..npix)
        .map(|p| {
            let mean = evaluated.iter().map(|c| c[p]).sum::<f32>() / k;
            (evaluated.iter().map(|c| (c[p] - mean).powi(2)).sum::<f32>() / k).sqrt()
        })
        .collect();
    UncertaintyMap {
        size,
        counterfactual,
        disagreement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triage_flags_anomalies_before_accepting_confident_cells() {
        let policy = TriagePolicy {
            auto_min_confidence: 0.9,
            anomaly_threshold: 4.0,
            target_accuracy: 0.995,
        };
        assert_eq!(policy.decide(0.95, 1.0), Triage::Auto);
        assert_eq!(
            policy.decide(0.9, 4.0),
            Triage::Auto,
            "at the confidence threshold: auto; at the anomaly threshold: not flagged"
        );
        assert_eq!(policy.decide(0.89, 1.0), Triage::Review);
        assert_eq!(
            policy.decide(0.99, 4.5),
            Triage::Anomaly,
            "a confident anomaly is flagged"
        );
        assert_eq!(policy.decide(0.5, f32::INFINITY), Triage::Anomaly);
    }

    #[test]
    fn probabilities_follow_gaps_and_temperature() {
        let p = probabilities(&[0.0, 0.1, 1.0], 0.1);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[1] && p[1] > p[2]);
        assert!((p[0] / p[1] - 1f32.exp()).abs() < 1e-4);
        let flat = probabilities(&[0.0, 0.1, 1.0], 100.0);
        assert!(normalised_entropy(&flat) > 0.99);
    }

    /// Scores of one class over 3 rounds with these class and "no class" errors.
    fn scores_with(class_err: f32, uncond_err: f32) -> CellScores {
        let mut s = CellScores::new(2, 0);
        s.errors[0] = vec![Some(class_err); 3];
        s.errors[1] = vec![Some(class_err * 2.0); 3];
        s.round_weights = vec![1.0; 3];
        s.round_score_weights = vec![1.0; 3];
        s.uncond_errors = vec![uncond_err; 3];
        s
    }

    #[test]
    fn the_conditioning_gain_score_flags_a_cell_its_class_does_not_help() {
        let stats = AnomalyStats {
            kind: AnomalyKind::ConditioningGain,
            mean: vec![(0.8f32).ln(), 0.0],
            std: vec![0.05, 1.0],
            profile_classes: Vec::new(),
            profile: Vec::new(),
        };
        // A typical cell: the class condition cuts the error by 20 % (z = 0).
        let typical = anomaly_score(&scores_with(0.8, 1.0), 0, &stats);
        // An unfamiliar cell: the condition barely helps, whatever the error level.
        let unfamiliar = anomaly_score(&scores_with(2.97, 3.0), 0, &stats);
        assert!(typical.abs() < 1e-4, "{typical}");
        assert!(unfamiliar > 4.0, "{unfamiliar}");
        // Without "no class" rounds there is no value: infinite, never silently typical.
        let mut none = scores_with(0.8, 1.0);
        none.uncond_errors.clear();
        assert!(anomaly_score(&none, 0, &stats).is_infinite());
    }

    #[test]
    fn a_card_asking_for_the_gain_without_no_class_rounds_is_refused() {
        let mut card = ModelCard::uncalibrated(DenoiserConfig::new());
        assert!(card.check().is_ok());
        card.anomaly.kind = AnomalyKind::ConditioningGain;
        let e = card.check().expect_err("refused");
        assert!(e.to_string().contains("uncond_rounds"), "{e}");
        card.classifier.uncond_rounds = 3;
        assert!(card.check().is_ok());
        card.anomaly.mean.pop();
        assert!(card.check().is_err());
    }

    #[test]
    fn a_gain_profile_card_must_fit_its_model() {
        let mut card = ModelCard::uncalibrated(DenoiserConfig::new().with_num_classes(2));
        card.classes.truncate(2);
        card.classifier.uncond_rounds = 3;
        card.anomaly.kind = AnomalyKind::GainProfile;
        card.anomaly.mean = vec![0.0; 2];
        card.anomaly.std = vec![1.0; 2];
        card.anomaly.profile_classes = vec![0, 1];
        let gaussian = ProfileGaussian {
            mean: vec![0.0; 3],
            precision: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        };
        card.anomaly.profile = vec![gaussian.clone(); 2];
        assert!(card.check().is_ok());
        let refused = |c: &ModelCard, what: &str| {
            let e = c.check().expect_err(what);
            assert!(e.to_string().contains(what), "{e}");
        };
        let mut late = card.clone();
        late.classifier.uncond_rounds = 4;
        refused(&late, "min_rounds");
        let mut short = card.clone();
        short.anomaly.profile.pop();
        refused(&short, "Gaussians");
        let mut wrong_dim = card.clone();
        wrong_dim.anomaly.profile_classes = vec![0];
        refused(&wrong_dim, "Gaussians");
        let mut excluded = card.clone();
        excluded.classifier.excluded = vec![1];
        refused(&excluded, "profile classes");
        // A cell: the distance is taken from the predicted class's Gaussian, on its profile.
        let mut s = CellScores::new(2, 0);
        s.errors = vec![vec![Some(0.5); 3], vec![Some(1.0); 3]];
        s.round_weights = vec![1.0; 3];
        s.round_score_weights = vec![1.0; 3];
        s.uncond_errors = vec![1.0; 3];
        let p = s.gain_profile(&[0, 1]).expect("profile");
        assert!((p[0] - 0.5f32.ln()).abs() < 1e-6 && p[1].abs() < 1e-6 && p[2].abs() < 1e-6);
        let v = anomaly_value(&s, 0, &card.anomaly).expect("value");
        assert!((v - 0.5f32.ln().abs()).abs() < 1e-5, "{v}");
        s.uncond_errors.clear();
        assert!(anomaly_score(&s, 0, &card.anomaly).is_infinite());
    }
    #[test]
    fn maps_compare_classes_per_round_evaluated() {
        // Class 0 ran 3 rounds, class 1 was screened out after 1, class 2 was never evaluated
        // (excluded). Per round, class 1's error is the higher one at pixel 0 and the same at
        // pixel 1.
        let mut s = CellScores::new(3, 4);
        s.pixel_errors = vec![
            vec![3.0, 6.0, 0.0, 0.0],
            vec![2.0, 2.0, 0.0, 0.0],
            vec![0.0; 4],
        ];
        s.pixel_rounds = vec![3, 1, 0];
        let m = uncertainty_map(&s, 0, 1, 2).counterfactual;
        assert_eq!(
            m,
            vec![1.0, 0.0, 0.0, 0.0],
            "not 2 - 3 and 2 - 6 from the raw sums"
        );
        // The disagreement is over the two evaluated classes only: |2 - 1| / 2 at pixel 0.
        let d = uncertainty_map(&s, 0, 1, 2).disagreement;
        assert!((d[0] - 0.5).abs() < 1e-6 && d[1].abs() < 1e-6, "{d:?}");
    }
}
