//! CytoLens in the browser: the Leptos app (components) and the compute worker's glue.
//! All numerics live in `model-core`.

pub mod field_scale;
pub mod last_decoded;
pub mod pool;
pub mod protocol;
pub mod reviewer;
pub mod session;
pub mod share;
pub mod sheet_text;
pub mod slides;

#[cfg(target_arch = "wasm32")]
pub mod bridge;
#[cfg(target_arch = "wasm32")]
pub mod browser_image;
#[cfg(target_arch = "wasm32")]
pub mod components;
#[cfg(target_arch = "wasm32")]
pub mod storage;
#[cfg(target_arch = "wasm32")]
pub mod worker;

/// Run the module's static constructors (burn's GPU runtime registers itself through them) once,
/// first thing in `main`, as `inventory`'s documentation asks on WebAssembly.
///
/// Without an explicit call, the linker (wasm-ld) treats the module as a "command" and wraps
/// every exported function in a call to all the constructors, so each call from JavaScript into
/// the module (each DOM node built, each value handed over) re-ran them: a profile of the page
/// while 48 images were analysed had more than half of its main thread's time there. With
/// the explicit call, the linker adds no wrappers.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub fn run_static_constructors() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: wasm-ld synthesises `__wasm_call_ctors`; called once, before any other code of
    // the module has run (the only caller is each binary's `main`, which wasm-bindgen calls
    // once at instantiation), as the constructors expect.
    unsafe { __wasm_call_ctors() }
}
