//! `classify`: one line per image (or per detected white cell of a smear).

use super::{err, CmdResult};
use burn::prelude::*;
use model_core::decode::decode_with_notes;
use model_core::evaluate::diagnose_all;
use model_core::preprocess::to_model_input;
use model_core::weights::{ModelFiles, MODEL_STEM};
use serde_json::json;
use std::path::{Path, PathBuf};

/// What one input file gave: its conversion notes and, per cell, the box (smear mode) and the
/// index of its input among all cells.
type FileCells = (Vec<String>, Vec<(Option<[u32; 4]>, usize)>);

/// Decode one file and cut its cells: the whole image (single-cell mode) or every detected
/// white cell (smear mode). Appends the model inputs to `cells`.
fn file_cells(
    path: &Path,
    size: usize,
    smear: bool,
    cells: &mut Vec<model_core::preprocess::CellCrop>,
) -> Result<FileCells, String> {
    let bytes = std::fs::read(path).map_err(err)?;
    let decoded = decode_with_notes(&bytes).map_err(err)?;
    if !smear {
        cells.push(to_model_input(&decoded.image, size));
        return Ok((decoded.notes, vec![(None, cells.len() - 1)]));
    }
    let opts = model_core::detect::DetectOptions {
        rbc_diameter_px: None,
    };
    let (_, found) = model_core::smear::prepare(&decoded.image, &opts, size);
    if found.is_empty() {
        return Err(model_core::Error::NoWhiteCell.to_string());
    }
    let mut out = Vec::new();
    for c in found {
        cells.push(c.input);
        out.push((Some(c.cell.bbox), cells.len() - 1));
    }
    Ok((decoded.notes, out))
}

pub fn classify(model_dir: &Path, files: &[PathBuf], as_json: bool, smear: bool) -> CmdResult {
    let model = ModelFiles::read(model_dir, MODEL_STEM).map_err(err)?;
    let clf = model.classifier(Device::flex()).map_err(err)?;
    let size = model.card.denoiser.image_size;
    let mut cells = Vec::new();
    let per_file: Vec<Result<FileCells, String>> = files
        .iter()
        .map(|f| file_cells(f, size, smear, &mut cells))
        .collect();
    let diagnoses = diagnose_all(&clf, &cells, |_| {}).map_err(err)?;
    let mut failed = 0;
    for (f, result) in files.iter().zip(per_file) {
        let name = f.display().to_string();
        let (notes, found) = match result {
            Ok(r) => r,
            Err(e) => {
                failed += 1;
                if as_json {
                    println!("{}", json!({"file": name, "error": e}));
                } else {
                    println!("{name}\terror: {e}");
                }
                continue;
            }
        };
        for (bbox, i) in found {
            let d = diagnoses.get(i).ok_or("internal: diagnosis count")?;
            let class = &model.card.classes[d.class];
            if as_json {
                let probs: serde_json::Map<String, serde_json::Value> = model
                    .card
                    .classes
                    .iter()
                    .zip(&d.probs)
                    .map(|(c, p)| (c.clone(), json!(p)))
                    .collect();
                let mut line = json!({"file": name, "class": class, "probs": probs, "confidence": d.confidence, "uncertainty": d.uncertainty, "anomaly": d.anomaly, "triage": d.triage.name(), "runner_up": model.card.classes[d.runner_up], "evals": d.evals});
                if let Some(b) = bbox {
                    line["bbox"] = json!(b);
                }
                if let Some(c) = d.colour {
                    line["colour"] = json!(c);
                    line["unusual_colour"] = json!(d.unusual_colour);
                }
                if !notes.is_empty() {
                    line["notes"] = json!(notes);
                }
                println!("{line}");
            } else {
                let at = bbox.map(|b| format!("\tbox {b:?}")).unwrap_or_default();
                let colour = if d.unusual_colour {
                    format!(
                        "\tunusual colour (score {:.1})",
                        d.colour.unwrap_or(f32::NAN)
                    )
                } else {
                    String::new()
                };
                println!("{name}{at}\t{class}\tconfidence {:.3}\tuncertainty {:.3}\tanomaly {:.2}\t{}\t{} evals{colour}", d.confidence, d.uncertainty, d.anomaly, d.triage.name(), d.evals);
            }
        }
        if !as_json {
            for n in &notes {
                println!("{name}\tnote: {n}");
            }
        }
    }
    if failed > 0 {
        Err(format!(
            "{failed} of {} files could not be classified",
            files.len()
        ))
    } else {
        Ok(())
    }
}
