//! Why a cell was triaged as it was, in words for the reviewer: the figure that decided it and
//! the threshold (fitted on val, stored in the model card) it was held against. A reviewer who
//! sees "review" beside a confidence of 97 % should not have to guess that 97.7 % was needed.

use crate::diagnosis::{Diagnosis, ModelCard, Triage};

/// `value` and `threshold` (times `scale`, followed by `unit`) with the fewest decimals, from
/// `fewest` to `fewest + 2`, that tell them apart, so that a cell just under a threshold never
/// reads "97.7 % under 97.7 %".
fn apart(value: f32, threshold: f32, scale: f32, unit: &str, fewest: usize) -> (String, String) {
    let show = |x: f32, p: usize| format!("{:.*}{unit}", p, scale * x);
    let p = (fewest..=fewest + 2)
        .find(|&p| show(value, p) != show(threshold, p))
        .unwrap_or(fewest + 2);
    (show(value, p), show(threshold, p))
}

/// Percentages, 1 to 3 decimals ([`apart`]).
fn percents(value: f32, threshold: f32) -> (String, String) {
    apart(value, threshold, 100.0, " %", 1)
}

/// Plain scores, 2 to 4 decimals ([`apart`]).
fn scores(value: f32, threshold: f32) -> (String, String) {
    apart(value, threshold, 1.0, "", 2)
}

/// Why `d` was triaged `d.triage` under `card`: one sentence naming the deciding figure and its
/// threshold. Read from the diagnosis's own triage (the colour gate first, as
/// [`crate::diagnosis::apply_colour_gate`] overrides the policy, then the focus gate, which
/// sends a cell to review, [`crate::diagnosis::apply_focus_gate`]), not decided again.
pub fn triage_reason(d: &Diagnosis, card: &ModelCard) -> String {
    let policy = &card.triage;
    let target = format!("{:.1} %", 100.0 * policy.target_accuracy);
    match d.triage {
        Triage::Anomaly if d.unusual_colour => match (&card.colour_gate, d.colour) {
            (Some(gate), Some(score)) => {
                let (s, t) = scores(score, gate.threshold);
                format!(
                    "colour score {s} above the colour gate's {t}: its colours lie outside those of {:.1} % of the val cells the model was calibrated on (another stain, lab or camera?)",
                    100.0 * gate.quantile
                )
            }
            _ => "its colours lie outside those of the cells the model was calibrated on".into(),
        },
        Triage::Anomaly if !d.anomaly.is_finite() => {
            "the anomaly score could not be computed for this cell".into()
        }
        Triage::Anomaly => {
            let (a, t) = scores(d.anomaly, policy.anomaly_threshold);
            format!(
                "anomaly score {a} above the threshold {t} fitted on val: its denoising errors are unlike those of the training cells of its class"
            )
        }
        Triage::Auto => {
            let (c, t) = percents(d.confidence, policy.auto_min_confidence);
            format!(
                "confidence {c}, at or above the {t} threshold (fitted on val for at least {target} accuracy of the cells it accepts)"
            )
        }
        Triage::Review if d.out_of_focus => match (&card.focus_gate, d.sharpness) {
            (Some(gate), Some(score)) => {
                let (s, t) = scores(score, gate.threshold);
                format!(
                    "sharpness {s} under the focus gate's {t}: blurrier than {:.1} % of the val cells the model was calibrated on (out of focus, or too few pixels per cell?)",
                    100.0 * gate.quantile
                )
            }
            _ => "blurrier than the cells the model was calibrated on".into(),
        },
        Triage::Review => {
            let (c, t) = percents(d.confidence, policy.auto_min_confidence);
            format!(
                "confidence {c}, under the {t} needed for auto-acceptance (a threshold fitted on val for at least {target} accuracy of the cells it accepts)"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour_gate::ColourGate;
    use crate::diagnosis::UncertaintyMap;
    use crate::preprocess::CellCrop;
    use crate::unet::DenoiserConfig;

    fn card() -> ModelCard {
        let mut card = ModelCard::uncalibrated(DenoiserConfig::new());
        card.triage.auto_min_confidence = 0.977;
        card.triage.anomaly_threshold = 2.45;
        card
    }

    fn diagnosis(confidence: f32, anomaly: f32) -> Diagnosis {
        let card = card();
        Diagnosis {
            class: 0,
            probs: vec![confidence, 1.0 - confidence],
            confidence,
            uncertainty: 0.1,
            anomaly,
            triage: card.triage.decide(confidence, anomaly),
            runner_up: 1,
            evals: 24,
            rounds: 3,
            conditioning_gain: None,
            map: UncertaintyMap {
                size: 1,
                counterfactual: vec![0.0],
                disagreement: vec![0.0],
            },
            colour: None,
            unusual_colour: false,
            sharpness: None,
            out_of_focus: false,
        }
    }

    #[test]
    fn a_cell_just_under_the_threshold_is_told_apart_from_it() {
        let d = diagnosis(0.9768, 0.0);
        assert_eq!(d.triage, Triage::Review);
        let why = triage_reason(&d, &card());
        assert!(
            why.starts_with("confidence 97.68 %, under the 97.70 % needed"),
            "{why}"
        );
        assert!(why.contains("at least 99.5 % accuracy"), "{why}");
        let d = diagnosis(0.80, 0.0);
        assert!(triage_reason(&d, &card()).starts_with("confidence 80.0 %, under the 97.7 %"));
    }

    #[test]
    fn auto_accepted_cells_name_the_threshold_they_met() {
        let d = diagnosis(0.992, 0.0);
        assert_eq!(d.triage, Triage::Auto);
        let why = triage_reason(&d, &card());
        assert!(
            why.starts_with("confidence 99.2 %, at or above the 97.7 %"),
            "{why}"
        );
    }

    #[test]
    fn anomalies_name_the_score_or_the_colour_gate() {
        let d = diagnosis(0.999, 3.1);
        assert_eq!(d.triage, Triage::Anomaly);
        let why = triage_reason(&d, &card());
        assert!(
            why.starts_with("anomaly score 3.10 above the threshold 2.45"),
            "{why}"
        );
        let d = diagnosis(0.5, f32::INFINITY);
        assert!(triage_reason(&d, &card()).contains("could not be computed"));

        // A confident, typical cell whose colours the gate refuses: the gate is the reason.
        // 40 val crops: channel means and contrast varying independently (a fixed sequence).
        let mut state = 7u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let crops: Vec<CellCrop> = (0..40)
            .map(|_| {
                let means = [0.3 + 0.1 * next(), -0.2 + 0.1 * next(), 0.1 * next()];
                let contrast = 0.2 + 0.05 * next();
                CellCrop {
                    size: 4,
                    pixels: (0..48)
                        .map(|p| means[p / 16] + contrast * if p % 2 == 0 { 1.0 } else { -1.0 })
                        .collect(),
                }
            })
            .collect();
        let mut card = card();
        let gate = ColourGate::fit(&crops, 0.999).expect("gate");
        let blue = CellCrop {
            size: 4,
            pixels: (0..48).map(|p| if p >= 32 { 1.0 } else { -1.0 }).collect(),
        };
        let mut d = diagnosis(0.999, 0.0);
        crate::diagnosis::apply_colour_gate(&mut d, &gate, &blue);
        assert!(
            d.unusual_colour,
            "the test crop must be refused by the gate"
        );
        assert!(d.colour.is_some_and(f32::is_finite), "{:?}", d.colour);
        card.colour_gate = Some(gate);
        let why = triage_reason(&d, &card);
        assert!(why.starts_with("colour score "), "{why}");
        assert!(why.contains("99.9 % of the val cells"), "{why}");
    }

    #[test]
    fn a_blurred_confident_cell_goes_to_review_and_the_focus_gate_is_the_reason() {
        use crate::focus_gate::FocusGate;
        let gate = FocusGate {
            threshold: -5.15,
            quantile: 0.999,
        };
        let mut card = card();
        card.focus_gate = Some(gate.clone());
        // A flat crop: sharpness at the floor, far under the threshold.
        let flat = CellCrop {
            size: 8,
            pixels: vec![0.1; 3 * 64],
        };
        let mut d = diagnosis(0.999, 0.0);
        assert_eq!(d.triage, Triage::Auto);
        crate::diagnosis::apply_focus_gate(&mut d, &gate, &flat);
        assert!(d.out_of_focus);
        assert_eq!(d.triage, Triage::Review, "never auto-accepted");
        let why = triage_reason(&d, &card);
        assert!(why.starts_with("sharpness -27.63 under the focus gate's -5.15: blurrier than 99.9 % of the val cells"), "{why}");
        // An anomaly stays an anomaly, with its own reason.
        let mut odd = diagnosis(0.999, 3.1);
        crate::diagnosis::apply_focus_gate(&mut odd, &gate, &flat);
        assert_eq!(odd.triage, Triage::Anomaly);
        assert!(triage_reason(&odd, &card).starts_with("anomaly score"));
        // A sharp crop passes, its sharpness recorded.
        let sharp = CellCrop {
            size: 8,
            pixels: (0..3 * 64)
                .map(|p| if (p + p / 8) % 2 == 0 { 0.9 } else { -0.9 })
                .collect(),
        };
        let mut d = diagnosis(0.999, 0.0);
        crate::diagnosis::apply_focus_gate(&mut d, &gate, &sharp);
        assert!(!d.out_of_focus && d.sharpness.is_some_and(|s| s > -5.15));
        assert_eq!(d.triage, Triage::Auto);
    }
}
