//! The model's measured figures, for the viewer to show beside its answers: what it scored on
//! the held-out test split overall, per class (how often a cell it calls a monocyte is one, how
//! many monocytes it finds) and in its triage. Written by `cytolens eval --sheet` from the same
//! run as the report, shipped beside the weights, and tied to them by their SHA-256 so that a
//! viewer never shows one model's figures for another.

use serde::{Deserialize, Serialize};

/// File name of the sheet beside the weights (`<stem>.sheet.json`).
pub fn sheet_file(stem: &str) -> String {
    format!("{stem}.sheet.json")
}

/// One class's figures on the split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFigures {
    /// Class name.
    pub class: String,
    /// Cells of this class in the split.
    pub cells: usize,
    /// Share of them the model called this class (sensitivity).
    pub recall: f64,
    /// Share of the cells the model called this class that were (positive predictive value);
    /// `None` when it called none.
    pub precision: Option<f64>,
}

/// The figures of one model on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSheet {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// SHA-256 of the weights measured.
    pub weights_sha256: String,
    /// What was measured on, in words.
    pub data: String,
    /// Cells measured.
    pub cells: usize,
    /// Plain accuracy.
    pub accuracy: f64,
    /// Mean per-class recall.
    pub balanced_accuracy: f64,
    /// Macro F1.
    pub macro_f1: f64,
    /// Expected calibration error (15 bins).
    pub ece: f64,
    /// Per class, in model order.
    pub classes: Vec<ClassFigures>,
    /// Share of cells auto-accepted, and their accuracy.
    pub auto_share: Option<f64>,
    /// Accuracy of the auto-accepted cells.
    pub auto_accuracy: Option<f64>,
    /// Share of cells sent to review.
    pub review_share: Option<f64>,
    /// Share of cells flagged as anomalies.
    pub anomaly_share: Option<f64>,
    /// AUROC of the anomaly score for a class left out of training (erythroblasts).
    pub anomaly_auroc: Option<f64>,
    /// The discriminative baseline's balanced accuracy on the same cells.
    pub baseline_balanced_accuracy: Option<f64>,
    /// The command that wrote this sheet.
    pub command: String,
}

impl ModelSheet {
    /// Per-class figures from a confusion matrix `[truth][predicted]` (`classes.len()` square).
    pub fn class_figures(confusion: &[Vec<usize>], classes: &[String]) -> Vec<ClassFigures> {
        classes
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let row = confusion.get(c);
                let cells: usize = row.map_or(0, |r| r.iter().sum());
                let right = row.and_then(|r| r.get(c)).copied().unwrap_or(0);
                let called: usize = confusion.iter().filter_map(|r| r.get(c)).sum();
                ClassFigures {
                    class: name.clone(),
                    cells,
                    recall: if cells == 0 {
                        0.0
                    } else {
                        right as f64 / cells as f64
                    },
                    precision: (called > 0).then(|| right as f64 / called as f64),
                }
            })
            .collect()
    }

    /// The figures of class `name`, if the sheet has it.
    pub fn class(&self, name: &str) -> Option<&ClassFigures> {
        self.classes.iter().find(|c| c.class == name)
    }

    /// Whether the sheet measured the weights of this SHA-256.
    pub fn measures(&self, weights_sha256: &str) -> bool {
        self.weights_sha256.eq_ignore_ascii_case(weights_sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_precision_come_from_the_rows_and_columns() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        // Truth in rows: 10 a (8 right, 2 called b), 5 b (all right), 0 c.
        let confusion = vec![vec![8, 2, 0], vec![0, 5, 0], vec![0, 0, 0]];
        let f = ModelSheet::class_figures(&confusion, &names);
        assert_eq!(f[0].cells, 10);
        assert!((f[0].recall - 0.8).abs() < 1e-12);
        assert_eq!(f[0].precision, Some(1.0));
        assert!((f[1].recall - 1.0).abs() < 1e-12);
        assert!((f[1].precision.expect("called b") - 5.0 / 7.0).abs() < 1e-12);
        assert_eq!((f[2].cells, f[2].recall, f[2].precision), (0, 0.0, None));
    }

    #[test]
    fn a_sheet_measures_only_its_own_weights() {
        let sheet = ModelSheet {
            model: "m".into(),
            version: "1".into(),
            weights_sha256: "ABC123".into(),
            data: "d".into(),
            cells: 1,
            accuracy: 1.0,
            balanced_accuracy: 1.0,
            macro_f1: 1.0,
            ece: 0.0,
            classes: Vec::new(),
            auto_share: None,
            auto_accuracy: None,
            review_share: None,
            anomaly_share: None,
            anomaly_auroc: None,
            baseline_balanced_accuracy: None,
            command: String::new(),
        };
        assert!(sheet.measures("abc123"));
        assert!(!sheet.measures("abc124"));
        assert!(sheet.class("a").is_none());
    }
}
