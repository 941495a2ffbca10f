//! Differential count of an image: table and bar chart, with flags.

use super::smear_view::class_colour;
use crate::session::{differential, ImageRecord};
use leptos::prelude::*;

/// The differential of one image.
#[component]
pub fn Differential(
    /// The image's record.
    record: Signal<Option<ImageRecord>>,
) -> impl IntoView {
    view! {
        {move || record.get().map(|r| {
            let d = differential(&r);
            let total: usize = d.values().sum();
            let awaiting = r.awaiting_review();
            let anomalies = r.cells.iter().filter(|c| c.result.triage == "anomaly").count();
            view! {
                <table class="differential" data-testid="differential">
                    <thead><tr><th>"Class"</th><th>"Count"</th><th>"%"</th><th></th></tr></thead>
                    <tbody>
                        {d.into_iter().map(|(class, n)| {
                            let pct = 100.0 * n as f64 / total.max(1) as f64;
                            view! {
                                <tr data-testid="differential-row" data-class=class.clone()>
                                    <td>{class.clone()}</td><td>{n}</td><td>{format!("{pct:.1}")}</td>
                                    <td><span class="bar" style:width=format!("{}px", (pct * 2.0) as u32) style:background=class_colour(&class)></span></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <p class="flags" data-testid="flags">
                    {format!("{total} white cells; {awaiting} awaiting review; {anomalies} flagged as anomalies")}
                </p>
            }
        })}
    }
}
