//! Measurement: how the denoiser's throughput on the CPU (burn flex) depends on the number of
//! rows in one forward call. The classifier sends each round of a batch of cells as one or more
//! forward calls of at most `MAX_ROWS` rows; if small calls waste the cores, larger batches of
//! cells (or larger calls) are a speed lever that changes no result.
//!
//! Usage (repo root): `cargo run --release --example forward_speed -- MODEL_DIR STEM
//! ROWS,ROWS,... [SECONDS]` (SECONDS of timed calls per row count, default 4).

use burn::prelude::*;
use model_core::unet::condition;
use model_core::weights::ModelFiles;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, stem, rows, rest @ ..] = args.as_slice() else {
        return Err("usage: forward_speed MODEL_DIR STEM ROWS,ROWS,... [SECONDS]".into());
    };
    let seconds: f64 = match rest.first() {
        Some(s) => s.parse().map_err(|e| format!("SECONDS {s}: {e}"))?,
        None => 4.0,
    };
    let rows: Vec<usize> = rows
        .split(',')
        .map(|r| r.parse().map_err(|e| format!("ROWS {r}: {e}")))
        .collect::<Result<_, _>>()?;
    let device = Device::flex();
    let files = ModelFiles::read(&PathBuf::from(dir), stem).map_err(|e| e.to_string())?;
    let clf = files
        .classifier(device.clone())
        .map_err(|e| e.to_string())?;
    let cfg = &clf.card.denoiser;
    let (size, k) = (cfg.image_size, cfg.num_classes);
    let gflop = cfg.flops() as f64 / 1e9;
    println!("rows per call | calls | ms per call | rows/s | GFLOP/s");
    for &n in &rows {
        // Deterministic pseudo-random inputs; their values do not matter for the speed.
        let x: Vec<f32> = (0..n * 3 * size * size)
            .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let t: Vec<usize> = (0..n).map(|i| 50 + (i * 37) % 550).collect();
        let classes: Vec<Option<usize>> = (0..n).map(|i| Some(i % k)).collect();
        let call = || {
            let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [n, 3, size, size]), &device);
            let cond = condition(&classes, k, &device);
            clf.model.forward(x, &t, cond).into_data()
        };
        call(); // warm-up: allocation, thread start
        let start = Instant::now();
        let mut calls = 0usize;
        while start.elapsed().as_secs_f64() < seconds {
            call();
            calls += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let rps = (calls * n) as f64 / secs;
        println!(
            "{n:>13} | {calls:>5} | {:>11.1} | {rps:>6.1} | {:>7.1}",
            1e3 * secs / calls as f64,
            rps * gflop
        );
    }
    Ok(())
}
