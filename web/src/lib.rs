//! CytoLens in the browser: the Leptos app (components) and the compute worker's glue.
//! All numerics live in `model-core`.

pub mod protocol;
pub mod session;

#[cfg(target_arch = "wasm32")]
pub mod bridge;
#[cfg(target_arch = "wasm32")]
pub mod components;
#[cfg(target_arch = "wasm32")]
pub mod storage;
#[cfg(target_arch = "wasm32")]
pub mod worker;
