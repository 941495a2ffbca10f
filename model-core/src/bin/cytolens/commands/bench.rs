//! `bench`: cells per second and evaluations per cell on this machine.

use super::{err, CmdResult, SplitSource};
use burn::prelude::*;
use model_core::engine::CellClassifier;
use model_core::evaluate::benchmark;
use model_core::weights::{ModelFiles, MODEL_STEM};
use std::path::Path;

pub fn bench(model_dir: &Path, source: &SplitSource) -> CmdResult {
    let model = ModelFiles::read(model_dir, MODEL_STEM).map_err(err)?;
    let data = source.at(model.card.denoiser.image_size)?;
    let clf: CellClassifier = model.classifier(Device::flex()).map_err(err)?;
    let cells = data.crops();
    // Warm-up on a few cells so allocation and thread start-up are not timed.
    benchmark(&clf, &cells[..cells.len().min(4)]).map_err(err)?;
    let speed = benchmark(&clf, &cells).map_err(err)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cfg = &model.card.denoiser;
    println!("backend: burn flex (CPU, {threads} threads, simd + rayon)");
    println!("cells: {}", cells.len());
    println!("cells per second: {:.2}", speed.cells_per_second);
    println!("mean denoiser evaluations per cell: {:.1}", speed.evals);
    println!(
        "GFLOP per denoiser forward (one image): {:.3}",
        cfg.flops() as f64 / 1e9
    );
    if cfg.class_blocks.is_some() {
        println!(
            "  of which the class-conditioned head: {:.3} (the shared trunk runs once per \
             noise draw, {:.1} per cell)",
            cfg.head_flops() as f64 / 1e9,
            speed.rounds
        );
    }
    println!("GFLOP per cell: {:.2}", speed.gflop_per_cell);
    println!("model sha256: {}", model.sha256());
    Ok(())
}
