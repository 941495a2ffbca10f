//! Experiment: where in the crop do the denoising errors of a leave-one-class-out model fall?
//! Classifies val cells of the fitted classes and of the left-out class with a model's card
//! settings and writes, per cell, its label, predicted class and the error of every class and
//! of the "no class" token summed over rings around the crop centre (over the first
//! `min_rounds` rounds). `tools/spatial-anomaly.py` turns these into anomaly scores.
//!
//! Usage (repo root): `cargo run --release --example spatial_features -- MODEL_DIR STEM
//! LEFT_OUT_CLASS VAL_CELLS OOD_CELLS OUT.json`

use burn::prelude::Device;
use model_core::dataset::{load_split, Split};
use model_core::weights::ModelFiles;
use std::path::{Path, PathBuf};

#[path = "common/rings.rs"]
mod rings;
use rings::{ring_of, RINGS};

fn ring_sums(map: &[f32], ring: &[usize]) -> Vec<f32> {
    let mut out = vec![0f32; RINGS.len()];
    for (v, &r) in map.iter().zip(ring) {
        out[r] += v;
    }
    out
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, stem, left_out, n_val, n_ood, out] = args.as_slice() else {
        return Err("usage: MODEL_DIR STEM LEFT_OUT_CLASS VAL_CELLS OOD_CELLS OUT.json".into());
    };
    let files = ModelFiles::read(Path::new(dir), stem).map_err(|e| e.to_string())?;
    let ex =
        model_core::classes::class_index(left_out).ok_or(format!("unknown class {left_out}"))?;
    let n_val: usize = n_val.parse().map_err(|e| format!("VAL_CELLS: {e}"))?;
    let n_ood: usize = n_ood.parse().map_err(|e| format!("OOD_CELLS: {e}"))?;
    let size = files.card.denoiser.image_size;
    let clf = files
        .classifier(Device::flex())
        .map_err(|e| e.to_string())?;
    let data = PathBuf::from("../shared/data");
    let val =
        load_split(&data, Split::Val, size, Path::new("runs/cache")).map_err(|e| e.to_string())?;
    let ring = ring_of(size);
    let mut cells = Vec::new();
    for set in [
        val.filter(|l| l != ex).subsample(n_val),
        val.filter(|l| l == ex).subsample(n_ood),
    ] {
        for (chunk, labels) in set.crops().chunks(64).zip(set.labels.chunks(64)) {
            let mut run = clf.start(chunk.to_vec());
            clf.scores(&mut run).map_err(|e| e.to_string())?;
            for (s, &label) in run.into_scores().iter().zip(labels) {
                cells.push(serde_json::json!({
                    "label": label,
                    "pred": s.best(),
                    "rings": s.pixel_errors.iter().map(|m| ring_sums(m, &ring)).collect::<Vec<_>>(),
                    "uncond_rings": ring_sums(&s.uncond_pixel_errors, &ring),
                }));
            }
            eprint!("  {} cells", cells.len());
        }
    }
    let json = serde_json::json!({ "left_out": ex, "rings": RINGS[..3], "cells": cells });
    std::fs::write(out, json.to_string()).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("\nwrote {out}");
    Ok(())
}
