//! Which compute backend the page uses, and the CPU/WebGPU self-test result.

use leptos::prelude::*;

/// The backend as reported by the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendInfo {
    /// `"webgpu"` or `"cpu"`.
    pub backend: String,
    /// Detail line.
    pub detail: String,
    /// Whether WebGPU could be chosen.
    pub webgpu_available: bool,
}

/// Shows the backend, lets the user switch between WebGPU and CPU, and shows the self-test.
#[component]
pub fn BackendLine(
    /// Backend reported by the worker, `None` while probing.
    info: ReadSignal<Option<BackendInfo>>,
    /// Self-test summary, `None` until it ran.
    self_test: ReadSignal<Option<String>>,
    /// Called with `true` to use WebGPU, `false` for the CPU.
    on_switch: Callback<bool>,
) -> impl IntoView {
    view! {
        <div class="backend" data-testid="backend">
            {move || match info.get() {
                None => view! { <span data-testid="backend-line">"Compute backend: probing…"</span> }.into_any(),
                Some(b) => {
                    let gpu = b.backend == "webgpu";
                    view! {
                        <span data-testid="backend-line" data-backend=b.backend.clone()>
                            {format!("Compute backend: {} — {}", if gpu { "WebGPU" } else { "CPU" }, b.detail)}
                        </span>
                        <Show when=move || b.webgpu_available>
                            <button data-testid="switch-backend" on:click=move |_| on_switch.run(!gpu)>
                                {if gpu { "Use CPU" } else { "Use WebGPU" }}
                            </button>
                        </Show>
                    }
                    .into_any()
                }
            }}
            <span class="selftest" data-testid="self-test">{move || self_test.get().unwrap_or_default()}</span>
        </div>
    }
}
