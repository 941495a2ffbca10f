//! Experiment: a uniform "model soup" (Wortsman et al. 2022) of training runs that share an
//! architecture, usually stages fine-tuned from the same weights. Every float parameter of
//! the output is the mean of the runs' EMA parameters. The output is a run folder that
//! `cytolens calibrate --run OUT` takes like any other: `OUT/options.json` (the first run's)
//! and `OUT/ckpt/ema.bpk`.
//!
//! Usage (repo root): `cargo run --release --example weight_soup -- OUT RUN1 RUN2 [RUN...]`

use burn::module::Module;
use burn::prelude::*;
use model_core::checkpoint::Checkpoint;
use model_core::ema;
use model_core::train::TrainOptions;
use std::path::{Path, PathBuf};

fn options(run: &Path) -> Result<TrainOptions, String> {
    let path = run.join("options.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> Result<(), String> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [out, runs @ ..] = args.as_slice() else {
        return Err("usage: weight_soup OUT RUN1 RUN2 [RUN...]".into());
    };
    if runs.len() < 2 {
        return Err("a soup needs at least two runs".into());
    }
    let device = Device::flex();
    let first = options(&runs[0])?;
    let arch = serde_json::to_string(&first.model).map_err(|e| e.to_string())?;
    let mut soup = None;
    for (i, run) in runs.iter().enumerate() {
        let opts = options(run)?;
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
    let ckpt = out.join("ckpt");
    std::fs::create_dir_all(&ckpt).map_err(|e| format!("{}: {e}", ckpt.display()))?;
    let bytes = soup
        .into_record()
        .into_bytes()
        .map_err(|e| e.to_string())?
        .to_vec();
    std::fs::write(ckpt.join("ema.bpk"), bytes).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&first).map_err(|e| e.to_string())?;
    std::fs::write(out.join("options.json"), json).map_err(|e| e.to_string())?;
    println!("soup of {} runs written to {}", runs.len(), out.display());
    Ok(())
}
