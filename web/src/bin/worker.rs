//! The compute worker: decoding, detection and classification off the page's thread.

#[cfg(target_arch = "wasm32")]
fn main() {
    web::run_static_constructors();
    web::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the worker runs in the browser");
}
