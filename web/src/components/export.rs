//! Downloads: JSON (one object per image) and CSV (one row per cell), built as blobs in the
//! page (no request leaves the page).

use crate::session::{export_csv, export_json, Session};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Offer `text` as a download named `name`.
pub fn download(name: &str, mime: &str, text: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(a) = document()
        .create_element("a")
        .ok()
        .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Export buttons.
#[component]
pub fn ExportButtons(
    /// The session.
    session: RwSignal<Session>,
    /// Class names in model order.
    classes: Signal<Vec<String>>,
    /// Opens the printable report.
    report_open: RwSignal<bool>,
) -> impl IntoView {
    view! {
        <div class="export">
            <button data-testid="export-json" on:click=move |_| {
                let s = session.get_untracked();
                let docs: Vec<serde_json::Value> = s.images.iter().filter(|i| !i.cells.is_empty()).map(|i| export_json(&s, i)).collect();
                download("cytolens.json", "application/json", &serde_json::to_string_pretty(&docs).unwrap_or_default());
            }>"Export JSON"</button>
            <button data-testid="export-csv" on:click=move |_| {
                download("cytolens.csv", "text/csv", &export_csv(&session.get_untracked(), &classes.get_untracked()));
            }>"Export CSV"</button>
            <button data-testid="open-report" on:click=move |_| report_open.set(true)>"Report…"</button>
        </div>
    }
}
