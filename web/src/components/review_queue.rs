//! The review queue: every cell triaged `review` or `anomaly` and not yet reviewed, anomalies
//! first, then the most uncertain; a click selects the cell. While the session's images are on
//! more than one slide, each cell names its slide.

use super::cell_panel::select_cell;
use crate::session::Session;
use leptos::prelude::*;

/// Cells awaiting review.
#[component]
pub fn ReviewQueue(
    /// The session.
    session: RwSignal<Session>,
    /// Selected cell.
    selected: RwSignal<Option<(u32, String)>>,
) -> impl IntoView {
    let queue = Memo::new(move |_| {
        session.with(|s| {
            let slides = s.shows_slides();
            s.review_queue()
                .into_iter()
                .filter_map(|(img, id)| {
                    let image = s.image(img)?;
                    let c = image.cells.iter().find(|c| c.id == id)?.clone();
                    let slide = slides.then(|| format!(" ({})", image.slide));
                    Some((img, c, slide.unwrap_or_default()))
                })
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="queue" data-testid="review-queue">
            <h2>{move || format!("Review queue ({})", queue.get().len())}</h2>
            <ol>
                {move || queue.get().into_iter().map(|(img, c, slide)| {
                    let id = c.id.clone();
                    view! {
                        <li>
                            <button data-testid="queue-item" class=format!("triage-{}", c.result.triage)
                                on:click=move |ev| select_cell(selected, (img, id.clone()), &ev)>
                                {format!("{}{slide} — {} ({}, uncertainty {:.2})", c.id, c.final_class(), c.result.triage, c.result.uncertainty)}
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
}
