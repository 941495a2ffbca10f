//! Bundled sample smears (BCCD fields, MIT licence), fetched from the page's own origin.

use super::file_opener::OpenedFile;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// File names in `static/samples/`.
pub const SAMPLES: [&str; 5] = [
    "BloodImage_00000.jpg",
    "BloodImage_00001.jpg",
    "BloodImage_00012.jpg",
    "BloodImage_00022.jpg",
    "BloodImage_00037.jpg",
];

async fn fetch_sample(name: &str) -> Result<Vec<u8>, String> {
    let resp = JsFuture::from(window().fetch_with_str(&format!("./samples/{name}")))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response".to_string())?;
    if !resp.ok() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// One button per sample smear.
#[component]
pub fn SampleGallery(
    /// Called with the fetched sample.
    on_file: Callback<OpenedFile>,
) -> impl IntoView {
    let (error, set_error) = signal(None::<String>);
    view! {
        <div class="samples" data-testid="samples">
            "Sample smears (BCCD, MIT licence): "
            {SAMPLES.iter().enumerate().map(|(i, name)| {
                let name = name.to_string();
                let label = format!("Sample {}", i + 1);
                view! {
                    <button data-testid="sample" on:click=move |_| {
                        let name = name.clone();
                        spawn_local(async move {
                            match fetch_sample(&name).await {
                                Ok(bytes) => on_file.run(OpenedFile { name, bytes }),
                                Err(e) => set_error.set(Some(format!("{name}: {e}"))),
                            }
                        });
                    }>{label}</button>
                }
            }).collect_view()}
            {move || error.get().map(|e| view! { <span class="error">{e}</span> })}
        </div>
    }
}
