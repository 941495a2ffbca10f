//! The review queue: every cell triaged `review` or `anomaly` and not yet reviewed, anomalies
//! first, then the most uncertain; a click selects the cell. While the session's images are on
//! more than one slide, each cell names its slide. Above it, the name of who reviews
//! ([`Session::set_reviewer`]), recorded with each review.

use super::cell_panel::select_cell;
use super::refusal;
use crate::reviewer::parse_reviewer;
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
    let (refused, set_refused) = signal(None::<String>);
    // The field's text; the session keeps it trimmed. The text follows the session only where
    // they differ by more than the trimming (a session restored after a reload), so that a
    // space being typed is not taken away.
    let text = RwSignal::new(String::new());
    let kept = Memo::new(move |_| session.with(|s| s.reviewer.clone()));
    Effect::new(move |_| {
        let kept = kept.get();
        if parse_reviewer(&text.get_untracked()).ok() != Some(kept.clone()) {
            text.set(kept.unwrap_or_default());
        }
    });
    view! {
        <section class="queue" data-testid="review-queue">
            <h2>{move || format!("Review queue ({})", queue.get().len())}</h2>
            <label class="reviewer">"Reviewing as "
                <input type="text" placeholder="your name" data-testid="reviewer-name"
                    prop:value=move || text.get()
                    on:input=move |ev| {
                        text.set(event_target_value(&ev));
                        set_refused.set(refusal(session, |s| s.set_reviewer(&text.get_untracked())));
                    } />
            </label>
            {move || refused.get().map(|why| view! {
                <p class="error" role="alert" data-testid="reviewer-refused">{format!("Name not taken: {why}.")}</p>
            })}
            <p class="hint">"Each review records this name and its time (in the exports); a smear's sign-off offers it."</p>
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
