//! From a decoded image to the cells to classify: detection, then one crop per white cell at
//! the training data's magnification, or the whole image when it is a single-cell crop.

use crate::detect::{cell_crop, detect, CellBox, DetectOptions, SmearFindings};
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
            .map(|c| {
                let crop = cell_crop(img, c, d);
                PreparedCell {
                    cell: c.clone(),
                    input: to_model_input(&crop, model_size),
                    preview: image::imageops::resize(
                        &crop,
                        SOURCE_SIZE,
                        SOURCE_SIZE,
                        FilterType::Lanczos3,
                    ),
                }
            })
            .collect()
    };
    (findings, cells)
}
