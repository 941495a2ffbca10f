//! Worker glue: a file in a format `model-core` does not read (HEIC, AVIF, JPEG XL: see
//! [`model_core::decode::BrowserFormat`]) decoded by the browser's own image decoder, where the
//! browser has one (every current browser reads AVIF; Safari reads HEIC and JPEG XL), and its
//! pixels handed to [`model_core::decode::from_rgba`] for the same checks as any file's.

use crate::bridge::js_error_text;
use model_core::decode::{self, BrowserFormat, Decoded, FORMATS};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, ImageBitmap, OffscreenCanvas, OffscreenCanvasRenderingContext2d,
    WorkerGlobalScope,
};

/// Decode a file: by `model-core` (JPEG, PNG, TIFF, BMP, WebP), else, for a
/// [`BrowserFormat`], by the browser. The message of a file neither reads names its format
/// and what to do.
pub async fn decode_file(bytes: &[u8]) -> Result<Decoded, String> {
    let own = match decode::decode_with_notes(bytes) {
        Ok(decoded) => return Ok(decoded),
        Err(e) => e,
    };
    let Some(format) = decode::browser_format(bytes) else {
        return Err(own.to_string());
    };
    let mut decoded = by_browser(bytes, format).await.map_err(|why| match why {
        Refusal::Unread(reason) => format!(
            "not a readable image: {} could not be read by this browser ({reason}): save it as \
             JPEG, or open it in a browser that reads it (expected {FORMATS})",
            format.name
        ),
        Refusal::Checked(e) => e.to_string(),
    })?;
    decoded.notes.insert(
        0,
        format!("{} read by this browser's own decoder", format.name),
    );
    Ok(decoded)
}

/// Why the browser's decoding gave no image.
enum Refusal {
    /// The browser could not decode the file (its words).
    Unread(String),
    /// Decoded, but refused by `model-core`'s checks (size, grayscale).
    Checked(model_core::error::Error),
}

/// The file's pixels as the browser decodes them (EXIF orientation applied, colours converted
/// to sRGB, as it would show the image), through an `ImageBitmap` drawn on an
/// `OffscreenCanvas`. The bitmap's size is checked before its pixels are copied out.
async fn by_browser(bytes: &[u8], format: BrowserFormat) -> Result<Decoded, Refusal> {
    let unread = |e: wasm_bindgen::JsValue| Refusal::Unread(js_error_text(&e));
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type(format.mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(unread)?;
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let promise = scope.create_image_bitmap_with_blob(&blob).map_err(unread)?;
    let bitmap: ImageBitmap = JsFuture::from(promise)
        .await
        .map_err(unread)?
        .unchecked_into();
    let (width, height) = (bitmap.width(), bitmap.height());
    let pixels = decode::check_size(width, height)
        .map_err(Refusal::Checked)
        .and_then(|()| rgba_of(&bitmap, width, height).map_err(unread));
    bitmap.close();
    decode::from_rgba(width, height, pixels?).map_err(Refusal::Checked)
}

/// A bitmap's pixels, 8-bit RGBA row by row (not premultiplied).
fn rgba_of(
    bitmap: &ImageBitmap,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, wasm_bindgen::JsValue> {
    let canvas = OffscreenCanvas::new(width, height)?;
    let context: OffscreenCanvasRenderingContext2d = canvas
        .get_context("2d")?
        .ok_or("no 2D context on an OffscreenCanvas")?
        .unchecked_into();
    context.draw_image_with_image_bitmap(bitmap, 0.0, 0.0)?;
    let data = context.get_image_data(0.0, 0.0, width as f64, height as f64)?;
    Ok(data.data().0)
}
