//! The page: mounts the Leptos app.

#[cfg(target_arch = "wasm32")]
fn main() {
    leptos::mount::mount_to_body(web::components::app::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the app runs in the browser: ./x serve");
}
