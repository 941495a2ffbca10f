//! The discriminative baseline: training and calibration.

use super::{err, CmdResult, SplitSource};
use burn::prelude::*;
use model_core::baseline::{
    load_baseline_file, train_baseline as train_cnn, BaselineCard, BaselineCnn, BaselineConfig,
};
use model_core::calibrate::fit_temperature;
use model_core::checkpoint::Checkpoint;
use model_core::classes::CLASSES;
use model_core::dataset::CellSet;
use model_core::evaluate::report;
use std::path::Path;

pub fn train_baseline(
    data: &CellSet,
    run: &Path,
    steps: usize,
    batch: usize,
    exclude: Option<usize>,
    resume: bool,
) -> CmdResult {
    let cfg = BaselineConfig::new();
    std::fs::create_dir_all(run).map_err(err)?;
    let card = BaselineCard {
        config: cfg.clone(),
        image_size: data.size,
        temperature: 1.0,
        excluded: exclude,
    };
    std::fs::write(
        run.join("card.json"),
        serde_json::to_string_pretty(&card).map_err(err)?,
    )
    .map_err(err)?;
    train_cnn(data, &cfg, steps, batch, exclude, run, resume).map_err(err)?;
    Ok(())
}

pub(super) fn load_baseline(dir: &Path, stem: &str) -> Result<(BaselineCnn, BaselineCard), String> {
    load_baseline_file(&dir.join(format!("{stem}.bpk")), &Device::flex()).map_err(err)
}

pub(super) fn baseline_logits(
    model: &BaselineCnn,
    data: &CellSet,
) -> Result<Vec<Vec<f32>>, String> {
    let n = 3 * data.size * data.size;
    let mut out = Vec::new();
    for start in (0..data.len()).step_by(128) {
        let end = (start + 128).min(data.len());
        let x = Tensor::<4>::from_data(
            TensorData::new(
                data.pixels[start * n..end * n].to_vec(),
                [end - start, 3, data.size, data.size],
            ),
            &Device::flex(),
        );
        out.extend(model.logits(x).map_err(err)?);
    }
    Ok(out)
}

pub(super) fn softmax_rows(logits: &[Vec<f32>], t: f32) -> Vec<Vec<f32>> {
    // Negative logits as "gaps" reuse the diffusion softmax.
    logits
        .iter()
        .map(|l| model_core::diagnosis::probabilities(&l.iter().map(|v| -v).collect::<Vec<_>>(), t))
        .collect()
}

pub fn calibrate_baseline(run: &Path, out: &Path, stem: &str, val: &SplitSource) -> CmdResult {
    let mut card: BaselineCard =
        serde_json::from_str(&std::fs::read_to_string(run.join("card.json")).map_err(err)?)
            .map_err(err)?;
    let model = Checkpoint::new(run.join("ckpt"))
        .load_module(card.config.init(&Device::flex()), "model")
        .map_err(err)?;
    let val = val.at(card.image_size)?;
    let val = match card.excluded {
        Some(ex) => val.filter(|l| l != ex),
        None => val.clone(),
    };
    let logits = baseline_logits(&model, &val)?;
    let neg: Vec<Vec<f32>> = logits
        .iter()
        .map(|l| l.iter().map(|v| -v).collect())
        .collect();
    card.temperature = fit_temperature(&neg, &val.labels);
    std::fs::create_dir_all(out).map_err(err)?;
    std::fs::write(
        out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&card).map_err(err)?,
    )
    .map_err(err)?;
    std::fs::copy(run.join("ckpt/model.bpk"), out.join(format!("{stem}.bpk"))).map_err(err)?;
    let probs = softmax_rows(&logits, card.temperature);
    let fitted = report(&val.labels, &probs, None, None, CLASSES.len());
    eprintln!(
        "baseline ({}x{}): temperature {:.3} on {} val cells; val accuracy {:.4}, balanced {:.4}",
        card.image_size,
        card.image_size,
        card.temperature,
        val.len(),
        fitted.accuracy,
        fitted.balanced_accuracy
    );
    Ok(())
}
