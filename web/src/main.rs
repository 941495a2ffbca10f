//! The page: mounts the Leptos app.

#[cfg(target_arch = "wasm32")]
fn main() {
    web::run_static_constructors();
    register_service_worker();
    leptos::mount::mount_to_body(web::components::app::App);
}

/// Register `sw.js` (offline use after the first visit), where the browser supports it.
#[cfg(target_arch = "wasm32")]
fn register_service_worker() {
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else {
        return;
    };
    let container = js_sys::Reflect::get(&window.navigator(), &"serviceWorker".into()).ok();
    let Some(container) = container.filter(|c| !c.is_undefined()) else {
        return;
    };
    let register = js_sys::Reflect::get(&container, &"register".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(register) = register {
        if let Ok(p) = register.call1(&container, &"./sw.js".into()) {
            if let Ok(p) = p.dyn_into::<js_sys::Promise>() {
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = wasm_bindgen_futures::JsFuture::from(p).await {
                        web_sys::console::warn_2(&"service worker not registered:".into(), &e);
                    }
                });
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the app runs in the browser: ./x serve");
}
