//! A smear (or single cell) with its detected cells: boxes coloured by class, outlined by
//! triage, an uncertainty overlay with an opacity slider, zoom, click to select a cell, and
//! marking a white cell the detector missed.

use super::canvas::{context_2d, heat_layer, put_rgba};
use super::image_view::DecodedImage;
use crate::session::ImageRecord;
use leptos::html::Canvas;
use leptos::prelude::*;

/// Colour of each class (model order), shared by boxes, bars and the differential.
pub fn class_colour(class: &str) -> &'static str {
    match class {
        "basophil" => "#4b3a9e",
        "eosinophil" => "#e0662f",
        "erythroblast" => "#b1245c",
        "ig" => "#c99a06",
        "lymphocyte" => "#2a7ab0",
        "monocyte" => "#3f9d5a",
        "neutrophil" => "#7b2d8b",
        "platelet" => "#6d6d6d",
        _ => "#222222",
    }
}

/// Draw each cell's per-pixel disagreement map over the square it was cropped from: the
/// smear-level uncertainty heatmap. Its strength grows with the cell's uncertainty, from 40 %
/// (a confident cell's map stays visible, faintly) to full.
fn draw_heat(canvas: &web_sys::HtmlCanvasElement, record: &ImageRecord) {
    use wasm_bindgen::JsCast;
    let Some(ctx) = context_2d(canvas) else {
        return;
    };
    ctx.clear_rect(0.0, 0.0, canvas.width() as f64, canvas.height() as f64);
    let Some(d) = record.findings.as_ref().and_then(|f| f.rbc_diameter_px) else {
        return;
    };
    for c in &record.cells {
        let n = c.result.map_size;
        if n == 0 || c.result.disagreement.len() != n * n {
            continue;
        }
        let Some(tile) = document()
            .create_element("canvas")
            .ok()
            .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        else {
            return;
        };
        tile.set_width(n as u32);
        tile.set_height(n as u32);
        put_rgba(
            &tile,
            &heat_layer(&c.result.disagreement, 0.4 + 0.6 * c.result.uncertainty),
            n as u32,
            n as u32,
        );
        let (x0, y0, side) = model_core::detect::crop_square(c.result.bbox, d);
        let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(
            &tile,
            x0 as f64,
            y0 as f64,
            side as f64,
            side as f64,
        );
    }
}

/// Marking a white cell the detector missed: whether and why not, what is under way, and
/// what to do with the point clicked.
#[derive(Clone, Copy)]
pub struct MarkCell {
    /// Why no cell can be added now ([`crate::session::Session::add_refusal`]), if so.
    pub refusal: Signal<Option<String>>,
    /// Marked cells being classified.
    pub pending: Signal<usize>,
    /// Why the last mark failed, if it did.
    pub error: Signal<Option<String>>,
    /// Called with the point clicked, `[x, y]` in image pixels.
    pub on_mark: Callback<[u32; 2]>,
}

/// The image pixel under a click on `ev`'s current target, an element drawn over the whole
/// `width` x `height` image at any zoom; `None` outside it.
fn clicked_pixel(ev: &web_sys::MouseEvent, width: u32, height: u32) -> Option<[u32; 2]> {
    use wasm_bindgen::JsCast;
    let el: web_sys::Element = ev.current_target()?.dyn_into().ok()?;
    let r = el.get_bounding_client_rect();
    if r.width() <= 0.0 || r.height() <= 0.0 {
        return None;
    }
    let x = ((ev.client_x() as f64 - r.left()) * width as f64 / r.width()).floor();
    let y = ((ev.client_y() as f64 - r.top()) * height as f64 / r.height()).floor();
    let inside = (0.0..width as f64).contains(&x) && (0.0..height as f64).contains(&y);
    inside.then_some([x as u32, y as u32])
}

/// The smear with overlays.
#[component]
pub fn SmearView(
    /// Pixels.
    image: DecodedImage,
    /// Session record of this image (cells).
    record: Signal<Option<ImageRecord>>,
    /// Selected cell id.
    selected: RwSignal<Option<(u32, String)>>,
    /// Page-side image id.
    id: u32,
    /// File name.
    name: String,
    /// Adding a cell the detector missed.
    marking: MarkCell,
) -> impl IntoView {
    let node = NodeRef::<Canvas>::new();
    let img = image.clone();
    Effect::new(move |_| {
        if let Some(c) = node.get() {
            put_rgba(&c, &img.rgba, img.width, img.height);
        }
    });
    let heat = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        if let (Some(c), Some(r)) = (heat.get(), record.get()) {
            draw_heat(&c, &r);
        }
    });
    let (opacity, set_opacity) = signal(0.6f64);
    let (zoom, set_zoom) = signal(1.0f64);
    let (w, h) = (image.width, image.height);
    // Waiting for the click that marks a missed cell.
    let (armed, set_armed) = signal(false);
    Effect::new(move |_| {
        if marking.refusal.get().is_some() {
            set_armed.set(false);
        }
    });
    let on_overlay_click = move |ev: web_sys::MouseEvent| {
        if !armed.get_untracked() {
            return;
        }
        if let Some(point) = clicked_pixel(&ev, w, h) {
            set_armed.set(false);
            marking.on_mark.run(point);
        }
    };
    view! {
            <div class="smear-tools">
                <label>"Uncertainty overlay "
                    <input type="range" min="0" max="1" step="0.05" data-testid="overlay-opacity"
                        prop:value=move || opacity.get().to_string()
                        on:input=move |ev| set_opacity.set(event_target_value(&ev).parse().unwrap_or(0.35)) />
                </label>
                <label>"Zoom "
                    <input type="range" min="0.5" max="4" step="0.25" data-testid="zoom"
                        prop:value=move || zoom.get().to_string()
                        on:input=move |ev| set_zoom.set(event_target_value(&ev).parse().unwrap_or(1.0)) />
                </label>
                <button data-testid="add-cell" disabled=move || marking.refusal.get().is_some()
                    title=move || marking.refusal.get().unwrap_or_else(|| "Mark a white cell the detector missed, to classify and count it".into())
                    on:click=move |_| set_armed.update(|a| *a = !*a)>
                    {move || if armed.get() { "Stop adding" } else { "Add a missed cell" }}
                </button>
                {move || armed.get().then(|| view! { <span class="hint" data-testid="add-cell-hint">"Click the centre of the white cell that has no box."</span> })}
                {move || (marking.pending.get() > 0).then(|| view! { <span class="hint" data-testid="add-cell-pending">"Classifying the added cell…"</span> })}
            </div>
            {move || marking.error.get().map(|e| view! { <p class="error" data-testid="add-cell-error">{format!("The cell could not be added: {e}")}</p> })}
            <div class="smear-scroll">
                <div class="smear" style:width=move || format!("{}px", w as f64 * zoom.get()) style:height=move || format!("{}px", h as f64 * zoom.get())>
                    <canvas node_ref=node width=w height=h data-testid="image-canvas" aria-label=name.clone()
    ></canvas>
                    <canvas node_ref=heat width=w height=h class="heat" data-testid="heat-overlay"
                        style:opacity=move || opacity.get().to_string()></canvas>
                    <svg class="overlay" class:marking=armed viewBox=format!("0 0 {w} {h}") preserveAspectRatio="none" data-testid="overlay"
                        on:click=on_overlay_click>
                        {move || record.get().map(|r| r.cells.into_iter().map(|c| {
                            let [x0, y0, x1, y1] = c.result.bbox;
                            let colour = class_colour(c.final_class());
                            let triage = c.result.triage.clone();
                            let sel_id = c.id.clone();
                            let is_sel = move || selected.get().is_some_and(|(i, s)| i == id && s == sel_id);
                            let cid = c.id.clone();
                            let select = move || if !armed.get_untracked() { selected.set(Some((id, cid.clone()))) };
                            let dash = if triage == "review" { "12 6" } else { "none" };
                            let stroke_w = if triage == "anomaly" { 7 } else { 4 };
                            let added = c.added.then_some("true");
                            // Reached by Tab too: Enter or Space selects it; Enter on the cell
                            // already selected goes on to the page, which confirms its class,
                            // as after a click.
                            let label = format!("Cell {}: {}, {triage}", c.id, c.final_class());
                            let (chosen, select_by_key) = (is_sel.clone(), select.clone());
                            view! {
                                <g class="cell-box" data-testid="cell-box" data-class=c.final_class().to_string() data-triage=triage.clone() data-added=added
                                    tabindex="0" role="button" aria-label=label
                                    on:keydown=move |ev: web_sys::KeyboardEvent| if matches!(ev.key().as_str(), "Enter" | " ") && !(ev.key() == "Enter" && chosen()) {
                                        ev.prevent_default();
                                        ev.stop_propagation();
                                        select_by_key();
                                    }
                                    on:click=move |_| select()>
                                    <rect x=x0 y=y0 width=x1 - x0 height=y1 - y0 fill="transparent" stroke="none" />
                                    <rect x=x0 y=y0 width=x1 - x0 height=y1 - y0 fill="none" stroke=colour stroke-width=stroke_w stroke-dasharray=dash
                                        class:selected=is_sel />
                                    <text x=x0 + 4 y=y0 + 22 fill=colour class="box-label">{format!("{}{} {}", if c.added { "+ " } else { "" }, c.final_class(), if triage == "auto" { "" } else if triage == "anomaly" { "⚠" } else { "?" })}</text>
                                </g>
                            }
                        }).collect_view())}
                    </svg>
                </div>
            </div>
        }
}
