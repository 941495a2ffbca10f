//! Experiment: does the denoising error carry more class evidence than its centre-weighted
//! mean? Runs every class in every round of the classifier's plan (no elimination) on val cells
//! and writes, per cell, class and round, eight summaries of the error map
//! `pred - noise` (squared, summed over channels, divided by the values `3 * size * size`):
//! - 0: the centre-weighted mean (what the classifier reads);
//! - 1..=4: the unweighted mean in four rings around the crop centre (edges at 0.25, 0.5, 0.75
//!   of the half-side; the last runs to the corners), each ring's sum divided by all values;
//! - 5..=7: the energy of the error's 2x2, 4x4 and 8x8 block means (its low frequencies).
//!
//! `tools/readout-fit.py` fits the classifier's score on each set of summaries.
//!
//! Usage (repo root): `cargo run --release --example readout_features -- MODEL_DIR STEM
//! VAL_CELLS OUT.json`

use burn::prelude::Device;
use model_core::classify::{pixel_weights, plan_rounds, ClassifierRun};
use model_core::dataset::{load_split, Split};
use model_core::weights::ModelFiles;
use std::path::{Path, PathBuf};

#[path = "common/rings.rs"]
mod rings;
use rings::{ring_of, RINGS};

const BLOCKS: [usize; 3] = [2, 4, 8];

/// The eight summaries of one residual `d = pred - noise` (CHW, `3 * size * size`).
fn summaries(d: &[f32], size: usize, weights: &[f32], ring: &[usize]) -> Vec<f32> {
    let npix = size * size;
    let n = (3 * npix) as f32;
    let mut out = vec![0f32; 1 + RINGS.len() + BLOCKS.len()];
    for p in 0..npix {
        let e: f32 = (0..3).map(|ch| d[ch * npix + p].powi(2)).sum();
        out[0] += e * weights[p];
        out[1 + ring[p]] += e;
    }
    for (k, &b) in BLOCKS.iter().enumerate() {
        let m = size / b;
        let mut energy = 0f32;
        for ch in 0..3 {
            for by in 0..m {
                for bx in 0..m {
                    let mut s = 0f32;
                    for y in by * b..(by + 1) * b {
                        for x in bx * b..(bx + 1) * b {
                            s += d[ch * npix + y * size + x];
                        }
                    }
                    let mean = s / (b * b) as f32;
                    energy += mean * mean * (b * b) as f32;
                }
            }
        }
        out[1 + RINGS.len() + k] = energy;
    }
    out.iter().map(|v| v / n).collect()
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, stem, n_val, out] = args.as_slice() else {
        return Err("usage: MODEL_DIR STEM VAL_CELLS OUT.json".into());
    };
    let files = ModelFiles::read(Path::new(dir), stem).map_err(|e| e.to_string())?;
    let n_val: usize = n_val.parse().map_err(|e| format!("VAL_CELLS: {e}"))?;
    let size = files.card.denoiser.image_size;
    let k = files.card.denoiser.num_classes;
    // Every class in every round, as `evaluate::full_evaluations` runs the classifier: no
    // elimination, no "no class" rows, so each round's rows are `cell * k + class`; and every
    // round in the cell's own frame, so the error is `pred - noise` as drawn.
    let mut settings = files.card.classifier.clone();
    settings.test_strictness = f32::INFINITY;
    settings.views = false;
    settings.uncond_rounds = 0;
    settings.excluded.clear();
    let clf = files
        .classifier(Device::flex())
        .map_err(|e| e.to_string())?;
    let data = PathBuf::from("../shared/data");
    let val = load_split(&data, Split::Val, size, Path::new("runs/cache"))
        .map_err(|e| e.to_string())?
        .subsample(n_val);
    let rounds = plan_rounds(&settings, size);
    let weights = pixel_weights(size, settings.centre_weighting);
    let ring = ring_of(size);
    let n = 3 * size * size;
    let started = std::time::Instant::now();
    let mut cells = Vec::new();
    let crops = val.crops();
    for (chunk, labels) in crops.chunks(16).zip(val.labels.chunks(16)) {
        // feats[cell][class][round] = summaries
        let mut feats = vec![vec![Vec::new(); k]; chunk.len()];
        let mut run = ClassifierRun::new(chunk.to_vec(), k, settings.clone());
        while let Some(inputs) = run.next_inputs() {
            if inputs.classes.len() != chunk.len() * k {
                return Err(format!("round {}: a class left the race", run.round()));
            }
            let noise = &rounds[run.round()].noise;
            let pred = clf.predict(&inputs).map_err(|e| e.to_string())?;
            for (row, p) in pred.chunks(n).enumerate() {
                let d: Vec<f32> = p.iter().zip(noise).map(|(a, b)| a - b).collect();
                feats[row / k][inputs.classes[row]].push(summaries(&d, size, &weights, &ring));
            }
            run.absorb(&pred);
        }
        for (f, &label) in feats.into_iter().zip(labels) {
            cells.push(serde_json::json!({ "label": label, "feats": f }));
        }
        eprint!(
            "\r  {} cells, {:.0} s",
            cells.len(),
            started.elapsed().as_secs_f32()
        );
    }
    let strata: Vec<usize> = rounds.iter().map(|r| r.stratum).collect();
    let t: Vec<usize> = rounds.iter().map(|r| r.t).collect();
    let json = serde_json::json!({ "strata": strata, "t": t, "cells": cells });
    std::fs::write(out, json.to_string()).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("\nwrote {out}");
    Ok(())
}
