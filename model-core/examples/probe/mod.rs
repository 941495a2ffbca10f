//! What the domain-shift probes (`stain_probe`, `blur_probe`, `field_stain_probe`) share: the
//! shipped model, a sample of PBC val images and every third BCCD field. Paths are those of this
//! repository and `../shared/data` beside it; a missing file ends the probe with its message.
#![allow(dead_code)] // each probe uses its own subset
use burn::prelude::Device;
use image::RgbImage;
use model_core::dataset::{manifest_rows, Split};
use model_core::decode::decode_image;
use model_core::detect::DetectOptions;
use model_core::engine::CellClassifier;
use model_core::preprocess::{to_model_input, CellCrop};
use std::path::{Path, PathBuf};

/// The shared data folder.
pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// The shipped model's classifier on the CPU, and its class names.
pub fn shipped() -> (CellClassifier, Vec<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../static/model");
    let files = model_core::weights::ModelFiles::read(&dir, model_core::weights::MODEL_STEM)
        .expect("shipped model");
    let names = files.card.classes.clone();
    (files.classifier(Device::flex()).expect("classifier"), names)
}

/// Decode an image file.
pub fn read(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode_image(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// About 400 PBC val images, evenly spaced in the manifest, with their labels.
pub fn pbc_val() -> Vec<(RgbImage, usize)> {
    let data = data();
    let rows = manifest_rows(&data, Split::Val).expect("PBC manifest");
    rows.iter()
        .step_by(rows.len() / 400)
        .map(|(p, l)| (read(&data.join(p)), *l))
        .collect()
}

/// Every third BCCD field, in name order.
pub fn bccd_fields() -> Vec<PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(data().join("bccd/JPEGImages"))
        .expect("BCCD images")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    paths.into_iter().step_by(3).collect()
}

/// [`pbc_val`] as 64x64 model inputs, with their labels.
pub fn pbc_val_crops() -> Vec<(CellCrop, usize)> {
    pbc_val()
        .into_iter()
        .map(|(img, l)| (to_model_input(&img, 64), l))
        .collect()
}

/// The 64x64 model inputs of the white cells detected in [`bccd_fields`] (scale estimated).
pub fn bccd_crops() -> Vec<CellCrop> {
    let opts = DetectOptions {
        rbc_diameter_px: None,
    };
    bccd_fields()
        .iter()
        .flat_map(|p| model_core::smear::prepare(&read(p), &opts, 64).1)
        .map(|c| c.input)
        .collect()
}

/// `img` magnified `z` times: its centre square of side (shorter side) / `z`, resized back to
/// the shorter side (Lanczos).
pub fn zoomed(img: &RgbImage, z: f32) -> RgbImage {
    let side = img.width().min(img.height());
    let part = (side as f32 / z).round() as u32;
    let centre = image::imageops::crop_imm(
        img,
        (img.width() - part) / 2,
        (img.height() - part) / 2,
        part,
        part,
    )
    .to_image();
    image::imageops::resize(&centre, side, side, image::imageops::FilterType::Lanczos3)
}

/// The class index, in `names`, of a PBC original (its folder's name).
pub fn original_label(path: &Path, names: &[String]) -> usize {
    let class = path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("{}: no class folder", path.display()));
    names
        .iter()
        .position(|n| n == class)
        .unwrap_or_else(|| panic!("{}: class {class} unknown", path.display()))
}
