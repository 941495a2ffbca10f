//! Experiment: is a leave-one-class-out model's *feature space* a better anomaly detector than
//! its denoising errors? Each cell is noised once per timestep (the same seeded noise for every
//! cell) and run through the denoiser with the "no class" token; `Denoiser::features` gives the
//! spatially averaged activations of every encoder level and of the middle block. Writes, per
//! cell, its set (`train`, `val` or `ood`: val cells of the left-out class), label and features
//! (one vector per timestep). `tools/feature-anomaly.py` fits class Gaussians on the train
//! cells and scores the val cells.
//!
//! Usage (repo root): `cargo run --release --example feature_anomaly -- MODEL_DIR STEM
//! LEFT_OUT_CLASS T1,T2,.. TRAIN_CELLS VAL_CELLS OOD_CELLS OUT.json`

use burn::prelude::*;
use model_core::dataset::{load_split, CellSet, Split};
use model_core::schedule::NoiseSchedule;
use model_core::train::normal_vec;
use model_core::unet::condition;
use model_core::weights::ModelFiles;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{what}: not a number: {s}"))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, stem, left_out, ts, n_train, n_val, n_ood, out] = args.as_slice() else {
        return Err(
            "usage: MODEL_DIR STEM LEFT_OUT_CLASS T1,T2,.. TRAIN_CELLS VAL_CELLS OOD_CELLS OUT.json"
                .into(),
        );
    };
    let files = ModelFiles::read(Path::new(dir), stem).map_err(|e| e.to_string())?;
    let ex =
        model_core::classes::class_index(left_out).ok_or(format!("unknown class {left_out}"))?;
    let ts: Vec<usize> = ts
        .split(',')
        .map(|t| parse(t, "timestep"))
        .collect::<Result<_, _>>()?;
    let device = Device::flex();
    let clf = files
        .classifier(device.clone())
        .map_err(|e| e.to_string())?;
    let size = files.card.denoiser.image_size;
    let num_classes = files.card.denoiser.num_classes;
    let data = PathBuf::from("../shared/data");
    let cache = Path::new("runs/cache");
    let train = load_split(&data, Split::Train, size, cache).map_err(|e| e.to_string())?;
    let val = load_split(&data, Split::Val, size, cache).map_err(|e| e.to_string())?;
    let sets: [(&str, CellSet); 3] = [
        (
            "train",
            train
                .filter(|l| l != ex)
                .subsample(parse(n_train, "TRAIN_CELLS")?),
        ),
        (
            "val",
            val.filter(|l| l != ex)
                .subsample(parse(n_val, "VAL_CELLS")?),
        ),
        (
            "ood",
            val.filter(|l| l == ex)
                .subsample(parse(n_ood, "OOD_CELLS")?),
        ),
    ];
    let schedule = NoiseSchedule::ddpm();
    let n = 3 * size * size;
    let noise = normal_vec(&mut ChaCha8Rng::seed_from_u64(7), n);
    let mut cells = Vec::new();
    for (name, set) in &sets {
        for start in (0..set.len()).step_by(64) {
            let end = (start + 64).min(set.len());
            let b = end - start;
            let x0 = Tensor::<4>::from_data(
                TensorData::new(set.pixels[start * n..end * n].to_vec(), [b, 3, size, size]),
                &device,
            );
            let eps = Tensor::<4>::from_data(
                TensorData::new(noise.repeat(b), [b, 3, size, size]),
                &device,
            );
            let cond = condition(&vec![None; b], num_classes, &device);
            let mut per_t = Vec::new();
            for &t in &ts {
                let t = vec![t; b];
                let xt = schedule.add_noise(x0.clone(), eps.clone(), &t);
                let f = clf.model.features(xt, &t, cond.clone());
                let dim = f.dims()[1];
                let v = f
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| format!("{e:?}"))?;
                per_t.push(v.chunks(dim).map(|c| c.to_vec()).collect::<Vec<_>>());
            }
            for i in 0..b {
                let feats: Vec<&Vec<f32>> = per_t.iter().map(|p| &p[i]).collect();
                cells.push(serde_json::json!({
                    "set": name,
                    "label": set.labels[start + i],
                    "features": feats,
                }));
            }
        }
        eprintln!("{name}: {} cells", set.len());
    }
    let json = serde_json::json!({ "left_out": ex, "timesteps": ts, "cells": cells });
    std::fs::write(out, json.to_string()).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("wrote {out}");
    Ok(())
}
