//! Experiment: a uniform "model soup" (Wortsman et al. 2022) of training runs that share an
//! architecture, usually stages fine-tuned from the same weights. Every float parameter of
//! the output is the mean of the runs' EMA parameters. The output is a run folder that
//! `cytolens calibrate --run OUT` takes like any other: `OUT/options.json` (the first run's)
//! and `OUT/ckpt/ema.bpk`.
//!
//! Usage (repo root): `cargo run --release --example weight_soup -- OUT RUN1 RUN2 [RUN...]`

use burn::prelude::*;
use model_core::checkpoint::Checkpoint;
use model_core::ema;
use model_core::train::TrainOptions;
use std::path::PathBuf;

fn main() -> Result<(), String> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [out, runs @ ..] = args.as_slice() else {
        return Err("usage: weight_soup OUT RUN1 RUN2 [RUN...]".into());
    };
    if runs.len() < 2 {
        return Err("a soup needs at least two runs".into());
    }
    let device = Device::flex();
    let first = TrainOptions::read(&runs[0]).map_err(|e| e.to_string())?;
    let arch = serde_json::to_string(&first.model).map_err(|e| e.to_string())?;
    let mut soup = None;
    for (i, run) in runs.iter().enumerate() {
        let opts = TrainOptions::read(run).map_err(|e| e.to_string())?;
        if serde_json::to_string(&opts.model).map_err(|e| e.to_string())? != arch {
            return Err(format!(
                "{} has another architecture than {}",
                run.display(),
                runs[0].display()
            ));
        }
        let model = Checkpoint::new(run.join("ckpt"))
            .load_module(opts.model.init(&device), "ema")
            .map_err(|e| format!("{}: {e}", run.display()))?;
        // Running mean: after run i (0-based) the soup weighs each run seen by 1 / (i + 1).
        soup = Some(match soup {
            None => model,
            Some(s) => ema::update(s, &model, i as f32 / (i + 1) as f32),
        });
        println!("added {}", run.display());
    }
    let soup = soup.ok_or("no runs")?;
    Checkpoint::new(out.join("ckpt"))
        .save_module("ema", &soup)
        .map_err(|e| e.to_string())?;
    first.write(out).map_err(|e| e.to_string())?;
    println!("soup of {} runs written to {}", runs.len(), out.display());
    Ok(())
}
