//! Draws a decoded image on a canvas at its natural size.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, ImageData};

/// A decoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// RGBA bytes.
    pub rgba: Vec<u8>,
}

/// Canvas showing `image`.
#[component]
pub fn ImageView(
    /// The pixels.
    image: DecodedImage,
    /// File name (alt text and test id).
    name: String,
) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    let img = image.clone();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        let ctx = c
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|o| o.dyn_into::<CanvasRenderingContext2d>().ok());
        if let (Some(ctx), Ok(data)) = (
            ctx,
            ImageData::new_with_u8_clamped_array_and_sh(Clamped(&img.rgba), img.width, img.height),
        ) {
            let _ = ctx.put_image_data(&data, 0.0, 0.0);
        }
    });
    view! {
        <figure class="image">
            <canvas node_ref=canvas width=image.width height=image.height data-testid="image-canvas" aria-label=name.clone()></canvas>
            <figcaption data-testid="image-caption">{format!("{name} — {}×{} px", image.width, image.height)}</figcaption>
        </figure>
    }
}
