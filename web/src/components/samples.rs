//! Bundled sample smears (BCCD fields, MIT licence), fetched from the page's own origin.

use super::file_opener::OpenedFile;
use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;

/// File names in `static/samples/`.
pub const SAMPLES: [&str; 5] = [
    "BloodImage_00000.jpg",
    "BloodImage_00001.jpg",
    "BloodImage_00012.jpg",
    "BloodImage_00022.jpg",
    "BloodImage_00037.jpg",
];

async fn fetch_sample(name: &str) -> Result<Vec<u8>, String> {
    let path = format!("./samples/{name}");
    crate::bridge::fetched_bytes(window().fetch_with_str(&path), &path).await
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
