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
///
/// A single-cell image (like PBC's) is classified from its centre square, as the training
/// crops were made, unless the user set the red-cell diameter: then its cell is cropped at the
/// training scale from that diameter, as a smear's cell is. (Its own red-cell reading is not
/// used: a crop holds too few red cells to read them steadily, and rescaling PBC val images by
/// it cost 0.13 of accuracy at their own magnification; `docs/zoom.txt`.)
pub fn prepare(
    img: &RgbImage,
    opts: &DetectOptions,
    model_size: usize,
) -> (SmearFindings, Vec<PreparedCell>) {
    let findings = detect(img, opts);
    let single = findings
        .cells
        .first()
        .filter(|_| findings.single_cell && opts.rbc_diameter_px.is_none());
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

    #[test]
    fn a_single_cell_image_is_cropped_by_a_diameter_the_user_sets() {
        let mut img = RgbImage::from_pixel(200, 200, image::Rgb([235, 225, 220]));
        for y in 75..=125i32 {
            for x in 75..=125i32 {
                if (x - 100).pow(2) + (y - 100).pow(2) <= 25 * 25 {
                    img.put_pixel(x as u32, y as u32, image::Rgb([110, 50, 160]));
                }
            }
        }
        let read = DetectOptions {
            rbc_diameter_px: None,
        };
        let (f, cells) = prepare(&img, &read, 32);
        assert!(f.single_cell, "{f:?}");
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].input.pixels, to_model_input(&img, 32).pixels);
        // The user says red cells are 60 px here (the image is magnified beyond PBC's): the
        // cell is cropped from a square wider than the image, so it appears smaller.
        let set = DetectOptions {
            rbc_diameter_px: Some(60.0),
        };
        let (f, cells) = prepare(&img, &set, 32);
        assert!(f.single_cell, "{f:?}");
        assert_eq!(cells.len(), 1);
        let (_, _, side) = crate::detect::crop_square(cells[0].cell.bbox, 60.0);
        assert!(side > 250, "{side}");
        let crop = cell_crop(&img, &cells[0].cell, 60.0);
        assert_eq!(cells[0].input.pixels, to_model_input(&crop, 32).pixels);
        assert_ne!(cells[0].input.pixels, to_model_input(&img, 32).pixels);
    }
}
