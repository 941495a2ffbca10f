//! `classify`: one line per image (or per detected white cell of a smear), and with
//! `--differential` the leukocyte differential of all of them at the end.

use super::{err, CmdResult};
use burn::prelude::*;
use model_core::decode::decode_with_notes;
use model_core::diagnosis::{Diagnosis, Triage};
use model_core::differential::{Differential, UNUSUAL_COLOUR};
use model_core::evaluate::diagnose_all;
use model_core::preprocess::to_model_input;
use model_core::weights::{ModelFiles, MODEL_STEM};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Files decoded and classified together: lines come out as each group is done, and memory
/// holds one group's cells, however many files a folder holds. A cell's diagnosis does not
/// depend on the cells classified with it.
const FILES_PER_GROUP: usize = 32;

/// One input of `classify`: an image file, or a folder that could not be read or holds no image.
enum Input {
    File(PathBuf),
    Unusable(PathBuf, String),
}

/// The paths named, each folder replaced by the image files under it (by extension, see
/// [`model_core::decode::EXTENSIONS`]; recursively, in name order; links to folders not
/// followed). A file named is taken whatever its extension: decoding says what it is.
fn expand(paths: &[PathBuf]) -> Vec<Input> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut out);
            if out.len() == before {
                out.push(Input::Unusable(
                    p.clone(),
                    format!(
                        "no image files ({}) in this folder",
                        model_core::decode::FORMATS
                    ),
                ));
            }
        } else {
            out.push(Input::File(p.clone()));
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<Input>) {
    let entries = match std::fs::read_dir(dir).and_then(|d| d.collect::<Result<Vec<_>, _>>()) {
        Ok(e) => e,
        Err(e) => return out.push(Input::Unusable(dir.to_path_buf(), e.to_string())),
    };
    let mut entries: Vec<_> = entries
        .into_iter()
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    entries.sort();
    for (path, is_dir) in entries {
        if is_dir {
            walk(&path, out);
        } else if model_core::decode::has_image_extension(&path) && path.is_file() {
            out.push(Input::File(path));
        }
    }
}

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

/// Print one classified cell: a JSON object or a tab-separated line.
fn print_cell(
    name: &str,
    bbox: Option<[u32; 4]>,
    d: &Diagnosis,
    notes: &[String],
    classes: &[String],
    as_json: bool,
) {
    let class = &classes[d.class];
    if as_json {
        let probs: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .zip(&d.probs)
            .map(|(c, p)| (c.clone(), json!(p)))
            .collect();
        let mut line = json!({"file": name, "class": class, "probs": probs, "confidence": d.confidence, "uncertainty": d.uncertainty, "anomaly": d.anomaly, "triage": d.triage.name(), "runner_up": classes[d.runner_up], "evals": d.evals});
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

/// Print the leukocyte differential of the classified cells' `counted` labels: one JSON line
/// (`{"differential": ..., "cells", "awaiting_review"}`), or a table.
fn print_differential(counted: &[&str], awaiting: usize, as_json: bool) {
    let d = Differential::of_counts(counted.iter().map(|label| (*label, 1)));
    if as_json {
        println!(
            "{}",
            json!({"differential": d, "cells": counted.len(), "awaiting_review": awaiting})
        );
        return;
    }
    println!(
        "differential of {} cells: {} leukocytes ({awaiting} cells await review: counted unreviewed)",
        counted.len(),
        d.leukocytes
    );
    for c in &d.classes {
        let interval = c
            .interval
            .map(|[lo, hi]| format!("\t95 % interval {lo:.1}-{hi:.1} %"))
            .unwrap_or_default();
        let percent = match d.leukocytes {
            0 => "-".to_string(),
            _ => format!("{:.1} %", c.percent),
        };
        println!("{}\t{}\t{percent}{interval}", c.class, c.count);
    }
    if let Some(per_100) = d.nucleated_red_per_100.filter(|_| d.nucleated_red > 0) {
        println!(
            "erythroblast\t{}\t{per_100:.1} per 100 leukocytes",
            d.nucleated_red
        );
    }
    for (label, n) in &d.not_counted {
        println!("{label}\t{n}\tnot in the percentages");
    }
}

pub fn classify(
    model_dir: &Path,
    files: &[PathBuf],
    as_json: bool,
    smear: bool,
    differential: bool,
) -> CmdResult {
    let model = ModelFiles::read(model_dir, MODEL_STEM).map_err(err)?;
    let clf = model.classifier(Device::flex()).map_err(err)?;
    let size = model.card.denoiser.image_size;
    let inputs = expand(files);
    let mut failed = 0;
    // What each classified cell counts as in the differential, and how many await review.
    let mut counted: Vec<&str> = Vec::new();
    let mut awaiting = 0;
    for group in inputs.chunks(FILES_PER_GROUP) {
        let mut cells = Vec::new();
        let per_file: Vec<Result<FileCells, String>> = group
            .iter()
            .map(|input| match input {
                Input::File(f) => file_cells(f, size, smear, &mut cells),
                Input::Unusable(_, why) => Err(why.clone()),
            })
            .collect();
        let diagnoses = diagnose_all(&clf, &cells, |_| {}).map_err(err)?;
        for (input, result) in group.iter().zip(per_file) {
            let (Input::File(f) | Input::Unusable(f, _)) = input;
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
                let classes = &model.card.classes;
                counted.push(if d.unusual_colour {
                    UNUSUAL_COLOUR
                } else {
                    &classes[d.class]
                });
                awaiting += usize::from(d.triage != Triage::Auto);
                print_cell(&name, bbox, d, &notes, classes, as_json);
            }
            if !as_json {
                for n in &notes {
                    println!("{name}\tnote: {n}");
                }
            }
        }
    }
    if differential {
        print_differential(&counted, awaiting, as_json);
    }
    if failed > 0 {
        Err(format!(
            "{failed} of {} files could not be classified",
            inputs.len()
        ))
    } else {
        Ok(())
    }
}
