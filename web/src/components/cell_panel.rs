//! The selected cell: crop beside its uncertainty heatmaps, class probabilities as bars,
//! confidence, anomaly score, runner-up, and the review controls (also on keys 1-9, 0, Enter,
//! u); a cell the reviewer added can be removed.

use super::canvas::{diverging, sequential, PixelCanvas};
use super::model_facts::{measured, SheetState};
use super::refusal;
use super::smear_view::class_colour;
use crate::session::{CellRecord, Session, NOT_A_WBC, UNCLASSIFIABLE};
use crate::sheet_text::class_line;
use leptos::prelude::*;
use std::collections::HashMap;

/// Give the selected cell `label` (`None`: the model's class again) and, for a cell of the
/// review queue, select the next one waiting ([`Session::review`]).
pub fn review_selected(
    session: RwSignal<Session>,
    selected: RwSignal<Option<(u32, String)>>,
    label: Option<String>,
) {
    let Some((img, id)) = selected.get_untracked() else {
        return;
    };
    let now = crate::bridge::now_iso();
    if let Some(next) = session
        .try_update(|s| s.review(img, &id, label, &now))
        .flatten()
    {
        selected.set(Some(next));
    }
}

/// What the confidence is not valid for, after it: a cell the colour gate flagged (another
/// stain) or the focus gate flagged (blur, under which the model is overconfident: 0.88 mean
/// confidence at 0.745 accuracy, `docs/blur.txt`); nothing for a cell like the calibration
/// cells. The test split's figures for its class are not shown for either.
fn confidence_caveat(r: &crate::protocol::CellResult) -> &'static str {
    if r.unusual_colour {
        " (calibrated on other colours: not valid here)"
    } else if r.out_of_focus {
        " (calibrated on sharper cells: not valid here)"
    } else {
        ""
    }
}

/// Take the focus off the button that was clicked, so that the review keys reach the page: Enter
/// on a focused button would click it again, for the next cell (a review button would give the
/// next cell its label instead of confirming the model's class).
fn release_focus(ev: &web_sys::MouseEvent) {
    use wasm_bindgen::JsCast;
    if let Some(el) = ev
        .current_target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
    {
        // Nothing to report: a button that keeps the focus only keeps Enter for itself.
        let _ = el.blur();
    }
}

/// Select a cell from a click on a button (the review queue, the gallery) and release the
/// focus ([`release_focus`]).
pub fn select_cell(
    selected: RwSignal<Option<(u32, String)>>,
    cell: (u32, String),
    ev: &web_sys::MouseEvent,
) {
    selected.set(Some(cell));
    release_focus(ev);
}

/// Confirm the model's class for the selected cell, as a review (and move on as
/// [`review_selected`] does).
pub fn accept_selected(session: RwSignal<Session>, selected: RwSignal<Option<(u32, String)>>) {
    let class = selected.with_untracked(|sel| {
        let (img, id) = sel.as_ref()?;
        session.with_untracked(|s| s.cell(*img, id).map(|c| c.result.class.clone()))
    });
    if let Some(class) = class {
        review_selected(session, selected, Some(class));
    }
}

/// Undo the last review edit and select the cell it restored.
pub fn undo_review(session: RwSignal<Session>, selected: RwSignal<Option<(u32, String)>>) {
    if let Some(cell) = session.try_update(|s| s.undo_last()).flatten() {
        selected.set(Some(cell));
    }
}

/// Details and review of the selected cell.
#[component]
pub fn CellPanel(
    /// Session (cells and edits).
    session: RwSignal<Session>,
    /// Selected cell.
    selected: RwSignal<Option<(u32, String)>>,
    /// Crops by cell id (128x128 RGBA).
    crops: RwSignal<HashMap<String, Vec<u8>>>,
    /// Class names in model order.
    classes: Signal<Vec<String>>,
    /// The model's measured figures (the line on the cell's class).
    sheet: SheetState,
) -> impl IntoView {
    let cell = Memo::new(move |_| {
        let (img, id) = selected.get()?;
        session.with(|s| s.cell(img, &id).cloned())
    });
    let crop = Signal::derive(move || {
        cell.get()
            .and_then(|c| crops.with(|m| m.get(&c.id).cloned()))
            .unwrap_or_default()
    });
    let cf = Signal::derive(move || {
        cell.get()
            .map(|c| diverging(&c.result.counterfactual))
            .unwrap_or_default()
    });
    let dis = Signal::derive(move || {
        cell.get()
            .map(|c| sequential(&c.result.disagreement))
            .unwrap_or_default()
    });
    // Where the selected cell comes from: its image and slide.
    let origin = Memo::new(move |_| {
        let (img, _) = selected.get()?;
        session.with(|s| s.image(img).map(|i| format!("{} · {}", i.name, i.slide)))
    });
    // The selected cell's smear, if signed off: its reviews are final.
    let locked = Memo::new(move |_| {
        let (img, _) = selected.get()?;
        session.with(|s| s.image(img).and_then(|i| i.signed_off.clone()))
    });
    let side = Signal::derive(move || cell.get().map_or(64, |c| c.result.map_size as u32));
    // Why the last removal of an added cell was refused, until another cell is selected.
    let (remove_error, set_remove_error) = signal(None::<String>);
    Effect::new(move |_| {
        selected.track();
        set_remove_error.set(None);
    });
    let review = move |label: Option<String>, ev: web_sys::MouseEvent| {
        release_focus(&ev);
        review_selected(session, selected, label)
    };
    view! {
        <aside class="cell-panel" data-testid="cell-panel">
            {move || match cell.get() {
                None => view! { <p class="hint">"Click a cell to see its crop, uncertainty maps and probabilities."</p> }.into_any(),
                Some(c) => {
                    let shown = c.final_class().to_string();
                    let CellRecord { result: r, reviewed_class, reviewed_by, id, added, .. } = c;
                    let by = reviewed_by.map(|who| format!(" by {who}")).unwrap_or_default();
                    let image = selected.get_untracked().map(|(image, _)| image);
                    let cell_id = id.clone();
                    let aside = (reviewed_class.is_none() && r.unusual_colour)
                        .then(|| format!(" (the model's untrusted guess: {})", r.class));
                    view! {
                        <h2 data-testid="cell-title">{format!("Cell {id}: {shown}")}
                            {reviewed_class.as_ref().map(|_| view! { <span class="reviewed" data-testid="reviewed-badge">{format!(" (reviewed{by}; model said {})", r.class)}</span> })}
                            {aside.map(|a| view! { <span class="reviewed">{a}</span> })}
                        </h2>
                        <p class="hint" data-testid="cell-origin">{move || origin.get()}</p>
                        {added.then(|| view! {
                            <p class="hint" data-testid="cell-added">"Added by the reviewer where the detector found no cell. "
                                <button data-testid="remove-added" disabled=move || locked.get().is_some()
                                    on:click=move |ev| {
                                        release_focus(&ev);
                                        let Some(image) = image else { return };
                                        match refusal(session, |s| s.remove_added(image, &cell_id)) {
                                            None => selected.set(None),
                                            Some(why) => set_remove_error.set(Some(why)),
                                        }
                                    }>"Remove this cell"</button>
                            </p>
                        })}
                        {move || remove_error.get().map(|e| view! { <p class="error" data-testid="remove-added-error">{e}</p> })}
                        <div class="maps">
                            <figure><PixelCanvas rgba=crop side=128 class="crop" testid="cell-crop" /><figcaption>"crop"</figcaption></figure>
                            {move || { let s = side.get(); view! {
                                <figure><PixelCanvas rgba=cf side=s class="heat" testid="cell-heatmap" />
                                    <figcaption>"counterfactual: red = favours the prediction, blue = the runner-up"</figcaption></figure>
                                <figure><PixelCanvas rgba=dis side=s class="heat" testid="cell-disagreement" />
                                    <figcaption>"where the classes disagree"</figcaption></figure>
                            }}}
                        </div>
                        {r.unusual_colour.then(|| view! {
                            <p class="warning" data-testid="cell-colour-warning">
                                {format!("The colours of this crop are unlike those of the cells the model was calibrated on (colour score {:.1}): probably another stain, lab or camera. Its class is not to be trusted; it is flagged as an anomaly.", r.colour.unwrap_or(f32::NAN))}
                            </p>
                        })}
                        {r.out_of_focus.then(|| view! {
                            <p class="warning" data-testid="cell-focus-warning">
                                {format!("This crop is blurrier than the cells the model was calibrated on (sharpness {:.2}): the field may be out of focus, or the cell too small in the image. Blur makes the model confidently wrong, so this cell is never auto-accepted.", r.sharpness.unwrap_or(f32::NAN))}
                            </p>
                        })}
                        <dl class="facts">
                            <dt>"Confidence"</dt><dd data-testid="cell-confidence">{format!("{:.1} %{}", 100.0 * r.confidence, confidence_caveat(&r))}</dd>
                            <dt>"Uncertainty"</dt><dd>{format!("{:.2}", r.uncertainty)}</dd>
                            <dt>"Anomaly score"</dt><dd data-testid="cell-anomaly">{format!("{:.2}", r.anomaly)}</dd>
                            <dt>"Runner-up"</dt><dd>{r.runner_up.clone()}</dd>
                            <dt>"Triage"</dt><dd data-testid="cell-triage">{r.triage.clone()}</dd>
                            <dt>"Denoiser evaluations"</dt><dd>{r.evals}</dd>
                        </dl>
                        {move || (!r.unusual_colour && !r.out_of_focus)
                            .then(|| measured(sheet, session))
                            .flatten()
                            .and_then(|s| class_line(&s, &r.class))
                            .map(|line| view! { <p class="hint" data-testid="cell-class-figures">{line}</p> })}
                        {(!r.triage_reason.is_empty()).then(|| view! {
                            <p class="hint" data-testid="cell-triage-reason">{format!("Why {}: {}.", r.triage, r.triage_reason)}</p>
                        })}
                        <div class="probs">
                            {r.probs.iter().map(|(k, p)| view! {
                                <div class="prob"><span class="prob-name">{k.clone()}</span>
                                    <span class="bar" style:width=format!("{}px", (p * 160.0) as u32) style:background=class_colour(k)></span>
                                    <span>{format!("{:.1} %", 100.0 * p)}</span></div>
                            }).collect_view()}
                        </div>
                    }.into_any()
                }
            }}
            {move || locked.get().map(|(who, when)| view! {
                <p class="hint" data-testid="cell-locked">{format!("This smear was signed off by {who} at {when}: its reviews are final.")}</p>
            })}
            <div class="review" data-testid="review-buttons">
                {move || classes.get().into_iter().enumerate().map(|(i, c)| {
                    let label = c.clone();
                    view! { <button disabled=move || locked.get().is_some() on:click=move |ev| review(Some(label.clone()), ev)>{format!("{} {c}", i + 1)}</button> }
                }).collect_view()}
                <button disabled=move || locked.get().is_some() on:click=move |ev| review(Some(UNCLASSIFIABLE.into()), ev)>"9 unclassifiable"</button>
                <button disabled=move || locked.get().is_some() on:click=move |ev| review(Some(NOT_A_WBC.into()), ev)>"0 not a white cell"</button>
                <button data-testid="accept" disabled=move || locked.get().is_some() on:click=move |ev| { release_focus(&ev); accept_selected(session, selected) }>"Enter: the model's class"</button>
                <button data-testid="undo" on:click=move |ev| { release_focus(&ev); undo_review(session, selected) }>"Undo (u)"</button>
            </div>
        </aside>
    }
}
