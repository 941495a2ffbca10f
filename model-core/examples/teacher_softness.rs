//! Experiment: how soft are a calibrated baseline's probabilities on the images it was trained
//! on? Distillation (`train --ce-teacher`) mixes them into the discriminative term's targets;
//! if they are near one-hot on train cells, the teacher adds little beyond the labels. Prints,
//! for `N` train cells (evenly spread) and the card's temperature times each of a few scales:
//! mean probability of the true class, mean top probability, mean entropy (nats), the share of
//! cells whose true class gets under 0.9, and the teacher's train accuracy.
//!
//! Usage (repo root): `cargo run --release --example teacher_softness -- TEACHER.bpk N`

use burn::prelude::*;
use model_core::baseline::load_baseline_file;
use model_core::dataset::{load_split, Split};
use model_core::diagnosis::probabilities;
use std::path::Path;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [teacher, n] = args.as_slice() else {
        return Err("usage: teacher_softness TEACHER.bpk N".into());
    };
    let n: usize = n.parse().map_err(|e| format!("N: {e}"))?;
    let device = Device::flex();
    let (model, card) =
        load_baseline_file(Path::new(teacher), &device).map_err(|e| e.to_string())?;
    let size = card.image_size;
    let data = load_split(
        Path::new("../shared/data"),
        Split::Train,
        size,
        Path::new("runs/cache"),
    )
    .map_err(|e| e.to_string())?
    .subsample(n);
    let px = 3 * size * size;
    let mut logits = Vec::new();
    for chunk in data.pixels.chunks(64 * px) {
        let x = TensorData::new(chunk.to_vec(), [chunk.len() / px, 3, size, size]);
        logits.extend(
            model
                .logits(Tensor::<4>::from_data(x, &device))
                .map_err(|e| e.to_string())?,
        );
    }
    let right = data
        .labels
        .iter()
        .zip(&logits)
        .filter(|(&label, l)| {
            let best = (0..l.len())
                .max_by(|&a, &b| l[a].total_cmp(&l[b]))
                .unwrap_or(0);
            best == label
        })
        .count();
    println!(
        "teacher {teacher}: card temperature {:.3}, train accuracy {:.4} on {} cells",
        card.temperature,
        right as f64 / data.len() as f64,
        data.len()
    );
    for scale in [1.0f32, 2.0, 4.0, 8.0] {
        let (mut p_true, mut p_top, mut ent, mut under) = (0f64, 0f64, 0f64, 0usize);
        for (&label, l) in data.labels.iter().zip(&logits) {
            let gaps: Vec<f32> = l.iter().map(|v| -v).collect();
            let p = probabilities(&gaps, card.temperature * scale);
            let pt = p[label] as f64;
            p_true += pt;
            p_top += p.iter().copied().fold(0f32, f32::max) as f64;
            ent -= p
                .iter()
                .filter(|&&v| v > 0.0)
                .map(|&v| (v as f64) * (v as f64).ln())
                .sum::<f64>();
            under += usize::from(pt < 0.9);
        }
        let m = data.len() as f64;
        println!(
            "temperature x{scale}: p(true) {:.4}, p(top) {:.4}, entropy {:.4} nats, p(true) < 0.9 for {:.1} %",
            p_true / m,
            p_top / m,
            ent / m,
            100.0 * under as f64 / m
        );
    }
    Ok(())
}
