//! From a decoded image to the cells to classify: detection, then one crop per white cell at
//! the training data's magnification, or the whole image when it is a single-cell crop.

use crate::detect::{cell_crop, detect, marked_cell, CellBox, DetectOptions, SmearFindings};
use crate::preprocess::{centre_square, to_model_input, CellCrop, SOURCE_SIZE};
use image::imageops::FilterType;
use image::RgbImage;

/// A white cell ready for the classifier.
#[derive(Debug, Clone)]
pub struct PreparedCell {
    /// Where it is in the image.
    pub cell: CellBox,
    /// Model input.
    pub input: CellCrop,
    /// 128x128 view of the crop, for display.
    pub preview: RgbImage,
}

/// Crop the white cell a reviewer marked at `centre` (`[x, y]` in image pixels) of a field
/// whose red cells are `rbc_diameter_px` across, as a detected cell there would be cropped
/// ([`marked_cell`] gives its box). An error when the point lies outside the image.
pub fn prepare_marked(
    img: &RgbImage,
    centre: [u32; 2],
    rbc_diameter_px: f32,
    model_size: usize,
) -> crate::error::Result<PreparedCell> {
    let cell = marked_cell(centre, rbc_diameter_px, img.width(), img.height())?;
    Ok(crop_cell(img, cell, rbc_diameter_px, model_size))
}

/// The model input and preview of `cell`, cropped at the training data's magnification.
fn crop_cell(
    img: &RgbImage,
    cell: CellBox,
    rbc_diameter_px: f32,
    model_size: usize,
) -> PreparedCell {
    let crop = cell_crop(img, &cell, rbc_diameter_px);
    PreparedCell {
        cell,
        input: to_model_input(&crop, model_size),
        preview: image::imageops::resize(&crop, SOURCE_SIZE, SOURCE_SIZE, FilterType::Lanczos3),
    }
}

/// Detect and crop every white cell of `img`.
pub fn prepare(
    img: &RgbImage,
    opts: &DetectOptions,
    model_size: usize,
) -> (SmearFindings, Vec<PreparedCell>) {
    let findings = detect(img, opts);
    let single = findings.cells.first().filter(|_| findings.single_cell);
    let cells = if let Some(cell) = single {
        let preview = image::imageops::resize(
            &centre_square(img),
            SOURCE_SIZE,
            SOURCE_SIZE,
            FilterType::Lanczos3,
        );
        vec![PreparedCell {
            cell: cell.clone(),
            input: to_model_input(img, model_size),
            preview,
        }]
    } else {
        let d = findings.rbc_diameter_px.unwrap_or(100.0);
        findings
            .cells
            .iter()
            .map(|c| crop_cell(img, c.clone(), d, model_size))
            .collect()
    };
    (findings, cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pale field with two violet nuclei, the second too faint for the detector.
    fn field() -> RgbImage {
        let mut img = RgbImage::from_pixel(400, 300, image::Rgb([235, 225, 220]));
        for (cx, cy, colour) in [(120, 150, [110, 50, 160]), (300, 150, [170, 150, 185])] {
            for y in cy - 18..=cy + 18 {
                for x in cx - 18..=cx + 18 {
                    if (x - cx) * (x - cx) + (y - cy) * (y - cy) <= 18 * 18 {
                        img.put_pixel(x as u32, y as u32, image::Rgb(colour));
                    }
                }
            }
        }
        img
    }

    #[test]
    fn a_marked_cell_is_cropped_as_a_detected_one() {
        let img = field();
        let opts = DetectOptions {
            rbc_diameter_px: Some(40.0),
        };
        let (_, cells) = prepare(&img, &opts, 32);
        assert_eq!(cells.len(), 1, "the faint nucleus is not detected");
        let found = &cells[0];
        let b = found.cell.bbox;
        let centre = [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
        let marked = prepare_marked(&img, centre, 40.0, 32).expect("inside");
        assert_eq!(marked.input.pixels, found.input.pixels);
        assert_eq!(marked.preview, found.preview);
        let missed = prepare_marked(&img, [300, 150], 40.0, 32).expect("inside");
        assert_ne!(missed.input.pixels, found.input.pixels);
        assert!(prepare_marked(&img, [400, 150], 40.0, 32).is_err());
    }
}
