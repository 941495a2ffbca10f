//! How well the model in use does, as measured: the sheet `cytolens eval --sheet` wrote beside
//! the weights ([`ModelSheet`]), shown only when it measured the very weights the worker loaded
//! (their SHA-256). In the footer, the whole sheet; in the cell panel, the figures of the class
//! the model gave the cell; in the report, the overall figures.

use crate::session::Session;
use crate::sheet_text::pct;
use leptos::prelude::*;
use model_core::model_sheet::{sheet_file, ModelSheet};
use model_core::weights::MODEL_STEM;

/// The shipped sheet as the page holds it: `None` while it loads, then the sheet or why it
/// could not be read.
pub type SheetState = RwSignal<Option<Result<ModelSheet, String>>>;

/// Fetch the sheet beside the weights (same origin) into `state`.
pub fn load_sheet(state: SheetState) {
    leptos::task::spawn_local(async move {
        let path = format!("model/{}", sheet_file(MODEL_STEM));
        let read = crate::bridge::fetched_bytes(window().fetch_with_str(&path), &path)
            .await
            .and_then(|bytes| {
                serde_json::from_slice::<ModelSheet>(&bytes).map_err(|e| format!("{path}: {e}"))
            });
        state.set(Some(read));
    });
}

/// The sheet, if it measured the weights the worker loaded.
pub fn measured(state: SheetState, session: RwSignal<Session>) -> Option<ModelSheet> {
    let sha = session.with(|s| s.model.as_ref().map(|m| m.sha256.clone()))?;
    state.with(|s| match s {
        Some(Ok(sheet)) if sheet.measures(&sha) => Some(sheet.clone()),
        _ => None,
    })
}

/// The footer's "How well this model does": the sheet's figures, per class, with what they
/// were measured on and the command that measured them; or why there are none.
#[component]
pub fn ModelFacts(
    /// The sheet as loaded.
    state: SheetState,
    /// The session (the model the worker loaded).
    session: RwSignal<Session>,
) -> impl IntoView {
    let body = move || {
        if let Some(sheet) = measured(state, session) {
            return view! { <SheetTable sheet=sheet /> }.into_any();
        }
        let why = match (state.get(), session.with(|s| s.model.is_some())) {
            (None, _) | (_, false) => "Loading the model's figures…".to_string(),
            (Some(Err(e)), _) => format!("The model's measured figures could not be read: {e}"),
            (Some(Ok(sheet)), true) => format!(
                "The figures shipped measured other weights (sha256 {}…) than the ones in use: not shown.",
                sheet.weights_sha256.chars().take(12).collect::<String>()
            ),
        };
        view! { <p data-testid="model-facts-missing">{why}</p> }.into_any()
    };
    view! {
        <details class="model-facts" data-testid="model-facts">
            <summary>"How well this model does (measured)"</summary>
            {body}
        </details>
    }
}

/// The sheet as a table.
#[component]
fn SheetTable(sheet: ModelSheet) -> impl IntoView {
    let share = |x: Option<f64>| x.map_or("–".to_string(), pct);
    view! {
        <p>{format!("Measured on {}: {} cells, each class's recall and precision below.", sheet.data, sheet.cells)}</p>
        <p data-testid="model-facts-overall">{format!(
            "Balanced accuracy {}, accuracy {}, macro F1 {}, calibration error (ECE) {}{}.",
            pct(sheet.balanced_accuracy), pct(sheet.accuracy), pct(sheet.macro_f1), pct(sheet.ece),
            sheet.baseline_balanced_accuracy.map_or(String::new(), |b| format!("; a discriminative CNN trained beside it: balanced accuracy {}", pct(b))),
        )}</p>
        <table class="model-facts-table">
            <thead><tr><th scope="col">"Class"</th><th scope="col">"Test cells"</th><th scope="col">"Found (recall)"</th><th scope="col">"Calls right (precision)"</th></tr></thead>
            <tbody>
                {sheet.classes.iter().map(|c| view! {
                    <tr data-testid="model-facts-row" data-class=c.class.clone()>
                        <td>{c.class.clone()}</td><td>{c.cells}</td><td>{pct(c.recall)}</td><td>{share(c.precision)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <p>{format!(
            "Triage: {} auto-accepted ({} of them right), {} sent to review, {} flagged as anomalies.{}",
            share(sheet.auto_share), share(sheet.auto_accuracy), share(sheet.review_share), share(sheet.anomaly_share),
            sheet.anomaly_auroc.map_or(String::new(), |a| format!(" A class left out of training (erythroblasts) is told from the others by the anomaly score with AUROC {a:.3}.")),
        )}</p>
        <p>"These figures hold for cells like PBC's (one lab, stain and analyser). Other labs' smears are not validated; cells whose colours are unlike PBC's are flagged as unusual colour."</p>
        <p class="hint">{format!("Weights sha256 {}; measured by: {}", sheet.weights_sha256, sheet.command)}</p>
    }
}
