//! Turning any decoded image into the model's input, the way the training data was prepared:
//! centre square crop, Lanczos resize to 128 (as PBC's 128 px release), then a 2x box-like
//! (triangle) downscale to the model resolution.

use image::imageops::FilterType;
use image::RgbImage;

/// Side of the PBC release the model was trained from.
pub const SOURCE_SIZE: u32 = 128;

/// A cell crop at model resolution, channel-major RGB in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct CellCrop {
    /// Side in pixels.
    pub size: usize,
    /// `3 * size * size` values, CHW order.
    pub pixels: Vec<f32>,
}

/// Centre square crop of an image.
pub fn centre_square(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let side = w.min(h);
    image::imageops::crop_imm(img, (w - side) / 2, (h - side) / 2, side, side).to_image()
}

/// Resize an RGB image of any size to the model's input exactly as training data was made.
pub fn to_model_input(img: &RgbImage, size: usize) -> CellCrop {
    let sq = centre_square(img);
    let at128 = if sq.width() == SOURCE_SIZE {
        sq
    } else {
        image::imageops::resize(&sq, SOURCE_SIZE, SOURCE_SIZE, FilterType::Lanczos3)
    };
    from_source(&at128, size)
}

/// Downscale a 128x128 PBC image to the model resolution.
pub fn from_source(img: &RgbImage, size: usize) -> CellCrop {
    let small = if img.width() as usize == size && img.height() as usize == size {
        img.clone()
    } else {
        image::imageops::resize(img, size as u32, size as u32, FilterType::Triangle)
    };
    CellCrop {
        size,
        pixels: rgb_to_chw(&small),
    }
}

/// RGB bytes to CHW floats in [-1, 1].
pub fn rgb_to_chw(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0f32; 3 * w * h];
    for (x, y, p) in img.enumerate_pixels() {
        let i = y as usize * w + x as usize;
        for c in 0..3 {
            out[c * w * h + i] = p.0[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

/// CHW floats in [-1, 1] back to RGB bytes (for previews).
pub fn chw_to_rgb(pixels: &[f32], size: usize) -> RgbImage {
    let n = size * size;
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let i = y as usize * size + x as usize;
        let px = |c: usize| {
            ((pixels[c * n + i] + 1.0) * 127.5)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_centre_and_resizes_to_model_size() {
        // A 200x100 image, left half red, right half blue: the centre square is 100x100 and
        // straddles both halves equally.
        let img = RgbImage::from_fn(200, 100, |x, _| {
            if x < 100 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let crop = to_model_input(&img, 64);
        assert_eq!(crop.pixels.len(), 3 * 64 * 64);
        let red_left = crop.pixels[10 * 64 + 5];
        let blue_right = crop.pixels[2 * 64 * 64 + 10 * 64 + 60];
        assert!(red_left > 0.9 && blue_right > 0.9);
        let back = chw_to_rgb(&crop.pixels, 64);
        assert_eq!(back.get_pixel(5, 10).0[0], 255);
    }
}
