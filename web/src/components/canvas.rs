//! Drawing RGBA pixels and heatmaps onto canvases.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, ImageData};

/// The canvas's 2D drawing context, if the browser gives one.
pub fn context_2d(canvas: &web_sys::HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|o| o.dyn_into::<CanvasRenderingContext2d>().ok())
}

/// Put RGBA bytes of `w`x`h` on the canvas.
pub fn put_rgba(canvas: &web_sys::HtmlCanvasElement, rgba: &[u8], w: u32, h: u32) {
    if let (Some(ctx), Ok(data)) = (
        context_2d(canvas),
        ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w, h),
    ) {
        let _ = ctx.put_image_data(&data, 0.0, 0.0);
    }
}

/// A diverging colour map for a signed map (blue negative, white zero, red positive), scaled
/// by the largest magnitude. Returns RGBA.
pub fn diverging(values: &[f32]) -> Vec<u8> {
    let m = values.iter().fold(1e-12f32, |a, v| a.max(v.abs()));
    values
        .iter()
        .flat_map(|v| {
            let t = (v / m).clamp(-1.0, 1.0);
            let (r, g, b) = if t >= 0.0 {
                (255.0, 255.0 * (1.0 - t), 255.0 * (1.0 - t))
            } else {
                (255.0 * (1.0 + t), 255.0 * (1.0 + t), 255.0)
            };
            [r as u8, g as u8, b as u8, 255]
        })
        .collect()
}

/// A heat layer for drawing over an image: red whose opacity grows with `values / max`, times
/// `strength` (0 to 1). Returns RGBA.
pub fn heat_layer(values: &[f32], strength: f32) -> Vec<u8> {
    let m = values.iter().fold(1e-12f32, |a, v| a.max(*v));
    values
        .iter()
        .flat_map(|v| {
            let t = (v / m).clamp(0.0, 1.0) * strength.clamp(0.0, 1.0);
            [220, 30, 60, (255.0 * t) as u8]
        })
        .collect()
}

/// A sequential colour map (white to violet) scaled by the maximum. Returns RGBA.
pub fn sequential(values: &[f32]) -> Vec<u8> {
    let m = values.iter().fold(1e-12f32, |a, v| a.max(*v));
    values
        .iter()
        .flat_map(|v| {
            let t = (v / m).clamp(0.0, 1.0);
            [
                (255.0 - 164.0 * t) as u8,
                (255.0 - 213.0 * t) as u8,
                (255.0 - 121.0 * t) as u8,
                255,
            ]
        })
        .collect()
}

/// A canvas that shows `rgba` (`side`x`side`) and re-draws when it changes.
#[component]
pub fn PixelCanvas(
    /// Pixels, RGBA.
    rgba: Signal<Vec<u8>>,
    /// Side of the square image.
    side: u32,
    /// CSS class.
    #[prop(into)]
    class: String,
    /// Test id.
    #[prop(into)]
    testid: String,
) -> impl IntoView {
    let node = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let px = rgba.get();
        if let Some(c) = node.get() {
            if px.len() == (side * side * 4) as usize {
                put_rgba(&c, &px, side, side);
            }
        }
    });
    view! { <canvas node_ref=node width=side height=side class=class data-testid=testid></canvas> }
}
