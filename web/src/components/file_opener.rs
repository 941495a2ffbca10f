//! Opening images: file picker, drag-and-drop and paste, for one or many files.

use leptos::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{File, FileList};

/// A file the user opened, read into memory.
#[derive(Debug, Clone)]
pub struct OpenedFile {
    /// File name.
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Read every file of a list, then hand them over one by one.
pub fn read_files(list: FileList, on_file: Callback<OpenedFile>) {
    let files: Vec<File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
    for file in files {
        spawn_local(async move {
            let name = file.name();
            match JsFuture::from(file.array_buffer()).await {
                Ok(buf) => {
                    let bytes = js_sys::Uint8Array::new(&buf).to_vec();
                    on_file.run(OpenedFile { name, bytes });
                }
                Err(e) => web_sys::console::error_1(&e),
            }
        });
    }
}

/// A drop zone with a file picker inside.
#[component]
pub fn FileOpener(
    /// Called once per opened file.
    on_file: Callback<OpenedFile>,
) -> impl IntoView {
    let (hover, set_hover) = signal(false);
    // The picker offers the extensions decoding reads (".jpg,.jpeg,..."), then those handed to
    // the browser's decoder.
    let accept = model_core::decode::EXTENSIONS
        .iter()
        .chain(model_core::decode::BROWSER_EXTENSIONS)
        .map(|e| format!(".{e}"))
        .collect::<Vec<_>>()
        .join(",");
    view! {
        <div
            class="drop"
            class:hover=hover
            data-testid="drop-zone"
            on:dragover=move |ev| {
                ev.prevent_default();
                set_hover.set(true);
            }
            on:dragleave=move |_| set_hover.set(false)
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                set_hover.set(false);
                if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
                    read_files(files, on_file);
                }
            }
        >
            <label>
                {format!(
                    "Open smear or cell images ({}; {} where this browser reads them) — or \
                     drop them here, or paste ",
                    model_core::decode::FORMATS,
                    model_core::decode::BROWSER_FORMATS
                )}
                <input
                    type="file"
                    multiple
                    accept=accept
                    data-testid="file-input"
                    on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        if let Some(files) = input.files() {
                            read_files(files, on_file);
                        }
                        input.set_value("");
                    }
                />
            </label>
        </div>
    }
}

/// Files pasted from the clipboard.
pub fn pasted_files(ev: &web_sys::ClipboardEvent) -> Option<FileList> {
    ev.clipboard_data()
        .and_then(|d| d.files())
        .filter(|f| f.length() > 0)
}
