//! The printable report, slide by slide: the differential of the slide's fields together, and
//! per field a thumbnail, the findings, the differential, the flagged cells' crops and the
//! sign-off, with the model and version used. Shown over the page; when it is open, printing (to paper or PDF)
//! prints the report alone.

use super::app::Entry;
use super::canvas::{put_rgba, PixelCanvas};
use super::differential::{Differential, SlideDifferential};
use super::model_facts::{measured, SheetState};
use crate::session::{ImageRecord, Session};
use crate::sheet_text::summary_line;
use leptos::html::Canvas;
use leptos::prelude::*;
use std::collections::HashMap;

/// The image itself, scaled down by CSS.
#[component]
fn Thumbnail(entry: Entry) -> impl IntoView {
    let node = NodeRef::<Canvas>::new();
    let img = entry.image.clone();
    Effect::new(move |_| {
        if let (Some(c), Some(img)) = (node.get(), img.as_ref()) {
            put_rgba(&c, &img.rgba, img.width, img.height);
        }
    });
    let (w, h) = entry.image.as_ref().map_or((1, 1), |i| (i.width, i.height));
    view! { <canvas node_ref=node width=w height=h class="report-thumb" data-testid="report-thumb"></canvas> }
}

/// One smear of the report.
#[component]
fn SmearReport(
    record: ImageRecord,
    entry: Option<Entry>,
    /// Its cells were cropped at a red-cell size far from its slide's ([`crate::field_scale`]).
    scale_warning: Option<String>,
    crops: RwSignal<HashMap<String, Vec<u8>>>,
) -> impl IntoView {
    let findings = record.findings_line();
    let flagged: Vec<_> = record
        .cells
        .iter()
        .filter(|c| c.result.triage != "auto")
        .cloned()
        .collect();
    let signed = match &record.signed_off {
        Some((who, when)) => format!("Signed off by {who} at {when}"),
        None => "Not signed off".to_string(),
    };
    let shown = Signal::derive({
        let r = record.clone();
        move || Some(r.clone())
    });
    view! {
        <section class="report-smear" data-testid="report-smear">
            <h3>{format!("{} ({}×{} px, analysed on {})", record.name, record.width, record.height, record.backend)}</h3>
            <div class="report-top">
                {entry.filter(|e| e.image.is_some()).map(|e| view! { <Thumbnail entry=e /> })}
                <div>
                    <p data-testid="report-findings">{findings}</p>
                    {scale_warning.map(|w| view! { <p class="warning scale-warning" data-testid="report-scale-warning">{w}</p> })}
                    <Differential record=shown />
                    <p data-testid="report-signoff">{signed}</p>
                </div>
            </div>
            <h4>{format!("Flagged cells ({})", flagged.len())}</h4>
            <div class="report-flagged">
                {flagged.into_iter().map(|c| {
                    let key = c.id.clone();
                    let rgba = Signal::derive(move || crops.with(|m| m.get(&key).cloned()).unwrap_or_default());
                    view! {
                        <figure data-testid="report-flagged-cell">
                            <PixelCanvas rgba=rgba side=128 class="thumb" testid="report-crop" />
                            <figcaption>{c.caption()}</figcaption>
                        </figure>
                    }
                }).collect_view()}
            </div>
        </section>
    }
}

/// The report over the page, with print and close buttons.
#[component]
pub fn Report(
    /// The session.
    session: RwSignal<Session>,
    /// Opened files (for the thumbnails).
    entries: RwSignal<Vec<Entry>>,
    /// Crops by cell id (128x128 RGBA).
    crops: RwSignal<HashMap<String, Vec<u8>>>,
    /// Whether the report is open.
    open: RwSignal<bool>,
    /// The model's measured figures.
    sheet: SheetState,
) -> impl IntoView {
    let figures = untrack(|| measured(sheet, session)).map(|s| summary_line(&s));
    let s = session.get_untracked();
    let model = s
        .model
        .clone()
        .map(|m| {
            format!(
                "Model {} version {}, weights sha256 {}",
                m.name, m.version, m.sha256
            )
        })
        .unwrap_or_else(|| "Model not loaded".into());
    let when = crate::bridge::now_iso();
    let entries = entries.get_untracked();
    // Per slide, its analysed fields with their opened files.
    let slides: Vec<(String, Vec<_>)> = s
        .slides()
        .into_iter()
        .map(|slide| {
            let fields: Vec<_> = s
                .analysed_fields(&slide)
                .map(|r| {
                    let e = entries.iter().find(|e| e.id == r.id).cloned();
                    let scale = s.scale_warning(r.id).map(|w| w.message());
                    (r.clone(), e, scale)
                })
                .collect();
            (slide, fields)
        })
        .filter(|(_, fields)| !fields.is_empty())
        .collect();
    // A modal dialog: the focus moves into it (to "Close"), Escape closes it (the page's key
    // handler), and the page under it is inert while it is open.
    let close = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if let Some(b) = close.get() {
            let _ = b.focus();
        }
    });
    view! {
        <div class="report" data-testid="report" role="dialog" aria-modal="true" aria-labelledby="report-title">
            <div class="report-actions">
                <button data-testid="report-print" on:click=move |_| { let _ = window().print(); }>"Print / save as PDF"</button>
                <button data-testid="report-close" node_ref=close title="Close the report (Escape)" on:click=move |_| open.set(false)>"Close"</button>
            </div>
            <h2 id="report-title">"CytoLens report"</h2>
            <p data-testid="report-model">{model}</p>
            {figures.map(|f| view! { <p data-testid="report-model-figures">{f}</p> })}
            <p>{format!("Generated {when} in this browser; no image or result left the machine.")}</p>
            <p class="report-warning">"For research and education only — not a medical device. Every result needs review by a qualified person."</p>
            {if slides.is_empty() { Some(view! { <p>"No analysed smear yet."</p> }) } else { None }}
            {slides.into_iter().map(|(slide, fields)| {
                let attr = slide.clone();
                view! {
                    <section class="report-slide" data-testid="report-slide" data-slide=attr>
                        <SlideDifferential session=session slide=slide />
                        {fields.into_iter().map(|(record, entry, scale)| view! { <SmearReport record=record entry=entry scale_warning=scale crops=crops /> }).collect_view()}
                    </section>
                }
            }).collect_view()}
        </div>
    }
}
