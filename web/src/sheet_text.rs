//! The model's measured figures ([`ModelSheet`]) in words, for the cell panel and the report
//! (the components are in `components::model_facts`).

use model_core::model_sheet::ModelSheet;

/// A share as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// One sentence on the class the model gave a cell: how often such a call was right on the
/// test split, and how many cells of that class it found there.
pub fn class_line(sheet: &ModelSheet, class: &str) -> Option<String> {
    let f = sheet.class(class)?;
    let right = f.precision.map_or_else(
        || format!("it called no test cell {class}"),
        |p| format!("{} of the cells it called {class} were {class}", pct(p)),
    );
    Some(format!(
        "On the test split, {right}; it found {} of the {} {class} cells.",
        pct(f.recall),
        f.cells
    ))
}

/// The overall figures in one sentence, for the report.
pub fn summary_line(sheet: &ModelSheet) -> String {
    let auto = match (sheet.auto_share, sheet.auto_accuracy) {
        (Some(share), Some(acc)) => format!(
            "; {} of the cells auto-accepted, {} of those right",
            pct(share),
            pct(acc)
        ),
        _ => String::new(),
    };
    format!(
        "Measured on {} ({} cells): balanced accuracy {}, accuracy {}{auto}. Not validated on other labs' smears.",
        sheet.data,
        sheet.cells,
        pct(sheet.balanced_accuracy),
        pct(sheet.accuracy)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_core::model_sheet::ClassFigures;

    fn sheet() -> ModelSheet {
        ModelSheet {
            model: "m".into(),
            version: "1".into(),
            weights_sha256: "ab".into(),
            data: "PBC test".into(),
            cells: 100,
            accuracy: 0.9,
            balanced_accuracy: 0.85,
            macro_f1: 0.86,
            ece: 0.01,
            classes: vec![
                ClassFigures {
                    class: "monocyte".into(),
                    cells: 40,
                    recall: 0.825,
                    precision: Some(0.9),
                },
                ClassFigures {
                    class: "basophil".into(),
                    cells: 3,
                    recall: 0.0,
                    precision: None,
                },
            ],
            auto_share: Some(0.5),
            auto_accuracy: Some(0.996),
            review_share: Some(0.49),
            anomaly_share: Some(0.01),
            anomaly_auroc: None,
            baseline_balanced_accuracy: None,
            command: "cytolens eval".into(),
        }
    }

    #[test]
    fn a_class_line_names_its_precision_and_recall() {
        assert_eq!(
            class_line(&sheet(), "monocyte").as_deref(),
            Some("On the test split, 90.0 % of the cells it called monocyte were monocyte; it found 82.5 % of the 40 monocyte cells.")
        );
        assert_eq!(
            class_line(&sheet(), "basophil").as_deref(),
            Some("On the test split, it called no test cell basophil; it found 0.0 % of the 3 basophil cells.")
        );
        assert_eq!(class_line(&sheet(), "platelet"), None);
    }

    #[test]
    fn the_summary_gives_the_overall_figures_and_the_triage() {
        assert_eq!(
            summary_line(&sheet()),
            "Measured on PBC test (100 cells): balanced accuracy 85.0 %, accuracy 90.0 %; 50.0 % of the cells auto-accepted, 99.6 % of those right. Not validated on other labs' smears."
        );
    }
}
