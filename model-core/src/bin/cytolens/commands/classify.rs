//! `classify`: one line per image (or per detected white cell of a smear), and with
//! `--differential` the leukocyte differential of all of them at the end.

use super::{diagnosis_fields, diagnosis_header, err, CmdResult};
use burn::prelude::*;
use model_core::decode::{self, decode_with_notes};
use model_core::detect::DetectOptions;
use model_core::diagnosis::{Diagnosis, ModelCard, Triage};
use model_core::differential::{Differential, UNUSUAL_COLOUR};
use model_core::evaluate::diagnose_all;
use model_core::preprocess::to_model_input;
use model_core::slide_scale::{slide_scale, SlideScale};
use model_core::triage_reason::triage_reason;
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
/// followed), phones' photos the CLI cannot read among them
/// ([`model_core::decode::BROWSER_EXTENSIONS`]), so that each is named with its reason rather
/// than skipped. A file named is taken whatever its extension: decoding says what it is.
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
        } else if (decode::has_image_extension(&path) || decode::has_browser_extension(&path))
            && path.is_file()
        {
            out.push(Input::File(path));
        }
    }
}

/// How `classify` cuts the cells of its files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Each file is one cell, classified from its centre square as the training images were.
    SingleCells,
    /// Smear fields, each cropped at its own red-cell reading.
    EachField,
    /// Smear fields, every one cropped at this red-cell diameter (pixels).
    Fixed(f32),
    /// Smear fields of one slide, cropped at the slide's red-cell size ([`slide_size`]).
    Slide,
}

/// What one input file gave: its conversion notes, the red-cell diameter its cells were cropped
/// at (smear mode) and, per cell, the box (smear mode) and the index of its input among the
/// group's cells.
struct FileCells {
    notes: Vec<String>,
    rbc_diameter_px: Option<f32>,
    found: Vec<(Option<[u32; 4]>, usize)>,
}

/// How a field's cells are cut once the slide's size is known.
#[derive(Clone, Copy)]
enum Cut {
    Centre,
    Field {
        rbc_diameter_px: Option<f32>,
        slide: Option<SlideScale>,
    },
}

/// Decode one file and cut its cells: the whole image (single-cell mode) or every detected
/// white cell (smear mode). Appends the model inputs to `cells`.
fn file_cells(
    path: &Path,
    size: usize,
    cut: Cut,
    cells: &mut Vec<model_core::preprocess::CellCrop>,
) -> Result<FileCells, String> {
    let bytes = std::fs::read(path).map_err(err)?;
    let decoded = decode_with_notes(&bytes).map_err(err)?;
    let mut notes = decoded.notes;
    let Cut::Field {
        rbc_diameter_px,
        slide,
    } = cut
    else {
        cells.push(to_model_input(&decoded.image, size));
        return Ok(FileCells {
            notes,
            rbc_diameter_px: None,
            found: vec![(None, cells.len() - 1)],
        });
    };
    let opts = DetectOptions { rbc_diameter_px };
    let (findings, prepared) = model_core::smear::prepare(&decoded.image, &opts, size);
    if let Some(s) = slide {
        notes.extend(slide_note(s, findings.rbc_reading_px));
    }
    if prepared.is_empty() {
        return Err(model_core::Error::NoWhiteCell.to_string());
    }
    let mut found = Vec::new();
    for c in prepared {
        cells.push(c.input);
        found.push((Some(c.cell.bbox), cells.len() - 1));
    }
    Ok(FileCells {
        notes,
        rbc_diameter_px: findings.rbc_diameter_px,
        found,
    })
}

/// The note for a field of a slide whose own red-cell reading is far from the slide's, or
/// could not be made.
fn slide_note(slide: SlideScale, reading: Option<f32>) -> Option<String> {
    let Some(r) = reading else {
        return Some(format!(
            "no red cells read here; cropped at the slide's {:.0} px",
            slide.diameter_px
        ));
    };
    slide.deviation(r).map(|dev| {
        format!(
            "red cells read {r:.0} px here, {:.0} % {} than on this slide ({:.0} px, the median of \
             {} fields); cropped at the slide's size",
            100.0 * dev.abs(),
            if dev < 0.0 { "smaller" } else { "larger" },
            slide.diameter_px,
            slide.fields
        )
    })
}

/// The slide's red-cell size: the median of the fields' own readings (each file decoded and
/// its red cells read; a file that cannot be is left to report its error later), refused
/// with fewer than [`model_core::slide_scale::MIN_FIELDS`] readings.
fn slide_size(inputs: &[Input]) -> Result<SlideScale, String> {
    let readings: Vec<f32> = inputs
        .iter()
        .filter_map(|input| match input {
            Input::File(f) => Some(f),
            Input::Unusable(..) => None,
        })
        .filter_map(|f| {
            let img = model_core::decode::decode_image(&std::fs::read(f).ok()?).ok()?;
            let opts = DetectOptions {
                rbc_diameter_px: None,
            };
            model_core::detect::detect(&img, &opts).rbc_reading_px
        })
        .collect();
    slide_scale(&readings).ok_or_else(|| {
        format!(
            "--slide needs the red cells of at least {} fields to be read; {} of {} files gave a \
             reading (set the size with --rbc-diameter instead)",
            model_core::slide_scale::MIN_FIELDS,
            readings.len(),
            inputs.len()
        )
    })
}

/// How `classify` writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated text, with notes on lines of their own.
    Text,
    /// One JSON object per line.
    Json,
    /// CSV with a header: one row per cell or per file that failed (its `error` column set).
    Csv,
}

/// `classify --csv`'s own columns, before a diagnosis's (`super::diagnosis_header`) and the
/// `notes` and `error` after them.
const CSV_OWN_COLUMNS: [&str; 8] = [
    "file",
    "x0",
    "y0",
    "x1",
    "y1",
    "rbc_diameter_px",
    "class",
    "runner_up",
];

/// Where `classify`'s lines go, in its [`Format`].
enum Sink {
    Text,
    Json,
    /// The CSV writer and the number of columns of its header.
    Csv(Box<csv::Writer<std::io::Stdout>>, usize),
}

/// Writes `classify`'s lines.
struct Printer {
    sink: Sink,
    /// The model's card: class names, and the thresholds a triage's reason names.
    card: ModelCard,
}

impl Printer {
    /// A printer; for CSV, the header is written now.
    fn new(format: Format, card: &ModelCard) -> Result<Self, String> {
        let classes = &card.classes;
        let sink = match format {
            Format::Text => Sink::Text,
            Format::Json => Sink::Json,
            Format::Csv => {
                let mut w = csv::Writer::from_writer(std::io::stdout());
                let mut header: Vec<String> = CSV_OWN_COLUMNS.map(String::from).to_vec();
                header.extend(diagnosis_header(classes));
                header.extend(["notes", "error"].map(String::from));
                w.write_record(&header).map_err(err)?;
                Sink::Csv(Box::new(w), header.len())
            }
        };
        Ok(Printer {
            sink,
            card: card.clone(),
        })
    }

    /// The line of a file that could not be used.
    fn error(&mut self, name: &str, e: &str) -> CmdResult {
        match &mut self.sink {
            Sink::Csv(w, width) => {
                let mut row = vec![String::new(); *width];
                row[0] = name.to_string();
                if let Some(last) = row.last_mut() {
                    *last = e.to_string();
                }
                w.write_record(&row).map_err(err)?;
                w.flush().map_err(err)
            }
            Sink::Json => {
                println!("{}", json!({"file": name, "error": e}));
                Ok(())
            }
            Sink::Text => {
                println!("{name}\terror: {e}");
                Ok(())
            }
        }
    }

    /// One classified cell.
    fn cell(
        &mut self,
        name: &str,
        bbox: Option<[u32; 4]>,
        rbc_diameter_px: Option<f32>,
        d: &Diagnosis,
        notes: &[String],
    ) -> CmdResult {
        let classes = &self.card.classes;
        let class = &classes[d.class];
        match &mut self.sink {
            Sink::Csv(w, _) => {
                let opt = |v: Option<String>| v.unwrap_or_default();
                let mut row: Vec<String> = vec![name.to_string()];
                row.extend((0..4).map(|k| opt(bbox.map(|b| b[k].to_string()))));
                row.push(opt(rbc_diameter_px.map(|r| format!("{r:.2}"))));
                row.extend([class.clone(), classes[d.runner_up].clone()]);
                row.extend(diagnosis_fields(d));
                row.extend([notes.join("; "), String::new()]);
                w.write_record(&row).map_err(err)?;
                w.flush().map_err(err)
            }
            Sink::Json => {
                let probs: serde_json::Map<String, serde_json::Value> = classes
                    .iter()
                    .zip(&d.probs)
                    .map(|(c, p)| (c.clone(), json!(p)))
                    .collect();
                let mut line = json!({"file": name, "class": class, "probs": probs, "confidence": d.confidence, "uncertainty": d.uncertainty, "anomaly": d.anomaly, "triage": d.triage.name(), "triage_reason": triage_reason(d, &self.card), "runner_up": classes[d.runner_up], "evals": d.evals});
                if let Some(b) = bbox {
                    line["bbox"] = json!(b);
                }
                if let Some(r) = rbc_diameter_px {
                    line["rbc_diameter_px"] = json!(r);
                }
                if let Some(c) = d.colour {
                    line["colour"] = json!(c);
                    line["unusual_colour"] = json!(d.unusual_colour);
                }
                if let Some(sharp) = d.sharpness {
                    line["sharpness"] = json!(sharp);
                    line["out_of_focus"] = json!(d.out_of_focus);
                }
                if !notes.is_empty() {
                    line["notes"] = json!(notes);
                }
                println!("{line}");
                Ok(())
            }
            Sink::Text => {
                let at = bbox.map(|b| format!("\tbox {b:?}")).unwrap_or_default();
                let colour = if d.unusual_colour {
                    format!(
                        "\tunusual colour (score {:.1})",
                        d.colour.unwrap_or(f32::NAN)
                    )
                } else {
                    String::new()
                };
                let focus = if d.out_of_focus {
                    format!(
                        "\tout of focus (sharpness {:.2})",
                        d.sharpness.unwrap_or(f32::NAN)
                    )
                } else {
                    String::new()
                };
                println!("{name}{at}\t{class}\tconfidence {:.3}\tuncertainty {:.3}\tanomaly {:.2}\t{}\t{} evals{colour}{focus}", d.confidence, d.uncertainty, d.anomaly, d.triage.name(), d.evals);
                Ok(())
            }
        }
    }

    /// A file's notes, on lines of their own (text only: JSON and CSV carry them per cell).
    fn notes(&self, name: &str, notes: &[String]) {
        if let Sink::Text = self.sink {
            for n in notes {
                println!("{name}\tnote: {n}");
            }
        }
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
    format: Format,
    scale: Scale,
    differential: bool,
) -> CmdResult {
    let model = ModelFiles::read(model_dir, MODEL_STEM).map_err(err)?;
    let mut out = Printer::new(format, &model.card)?;
    let clf = model.classifier(Device::flex()).map_err(err)?;
    let size = model.card.denoiser.image_size;
    let inputs = expand(files);
    let cut = match scale {
        Scale::SingleCells => Cut::Centre,
        Scale::EachField => Cut::Field {
            rbc_diameter_px: None,
            slide: None,
        },
        Scale::Fixed(d) => Cut::Field {
            rbc_diameter_px: Some(d),
            slide: None,
        },
        Scale::Slide => {
            let slide = slide_size(&inputs)?;
            eprintln!(
                "slide: red cells {:.1} px, the median of {} fields; every field's cells cropped at it",
                slide.diameter_px, slide.fields
            );
            Cut::Field {
                rbc_diameter_px: Some(slide.diameter_px),
                slide: Some(slide),
            }
        }
    };
    let mut failed = 0;
    // What each classified cell counts as in the differential, and how many await review.
    let mut counted: Vec<&str> = Vec::new();
    let mut awaiting = 0;
    for group in inputs.chunks(FILES_PER_GROUP) {
        let mut cells = Vec::new();
        let per_file: Vec<Result<FileCells, String>> = group
            .iter()
            .map(|input| match input {
                Input::File(f) => file_cells(f, size, cut, &mut cells),
                Input::Unusable(_, why) => Err(why.clone()),
            })
            .collect();
        let diagnoses = diagnose_all(&clf, &cells, |_| {}).map_err(err)?;
        for (input, result) in group.iter().zip(per_file) {
            let (Input::File(f) | Input::Unusable(f, _)) = input;
            let name = f.display().to_string();
            let FileCells {
                notes,
                rbc_diameter_px,
                found,
            } = match result {
                Ok(r) => r,
                Err(e) => {
                    failed += 1;
                    out.error(&name, &e)?;
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
                out.cell(&name, bbox, rbc_diameter_px, d, &notes)?;
            }
            out.notes(&name, &notes);
        }
    }
    if differential {
        print_differential(&counted, awaiting, format == Format::Json);
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
