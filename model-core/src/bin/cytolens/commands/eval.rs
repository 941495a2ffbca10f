//! `eval`: the report on a split for both models, the per-cell CSV and the anomaly figures.

use super::baseline::{baseline_logits, load_baseline, softmax_rows};
use super::{diagnosis_fields, diagnosis_header, err, CmdResult, SplitSource};
use burn::prelude::*;
use model_core::classes::CLASSES;
use model_core::classify::ClassifierSettings;
use model_core::diagnosis::Diagnosis;
use model_core::evaluate::{diagnose_all, reliability_svg, report, ClassifierReport};
use model_core::metrics::auroc;
use model_core::model_sheet::ModelSheet;
use model_core::weights::{ModelFiles, MODEL_STEM};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// The diffusion classifier's answers on a split's cells.
struct DiffusionRun {
    /// One per cell, in the split's order.
    diagnoses: Vec<Diagnosis>,
    /// The cells' true classes.
    labels: Vec<usize>,
    /// The cells' image paths (relative to the data root).
    paths: Vec<String>,
    /// Cells classified per second.
    cells_per_second: f64,
    /// The model's card name and version, and the SHA-256 of its weights.
    model: (String, String, String),
}

/// Classify `source`'s cells, loaded at the model's resolution, with the model `stem` in
/// `model_dir`, as its card says. `uncond_if_none` gives a card without "no class" rounds that
/// many (a card that has them keeps its own: its anomaly statistics were fitted on profiles
/// over exactly those rounds).
fn diffusion_on(
    source: &SplitSource,
    model_dir: &Path,
    stem: &str,
    uncond_if_none: Option<usize>,
) -> Result<DiffusionRun, String> {
    let mut files = ModelFiles::read(model_dir, stem).map_err(err)?;
    let model = (
        files.card.name.clone(),
        files.card.version.clone(),
        files.sha256(),
    );
    if let Some(n) = uncond_if_none {
        files.card.classifier = files.card.classifier.clone().or_uncond_rounds(n);
    }
    let data = source.at(files.card.denoiser.image_size)?;
    let clf = files.classifier(Device::flex()).map_err(err)?;
    let start = Instant::now();
    let diagnoses = diagnose_all(&clf, &data.crops(), |n| {
        eprint!("\r  {stem}: {n}/{}", data.len())
    })
    .map_err(err)?;
    let cells_per_second = data.len() as f64 / start.elapsed().as_secs_f64();
    eprintln!(" ({cells_per_second:.1} cells/s)");
    Ok(DiffusionRun {
        diagnoses,
        labels: data.labels,
        paths: data.paths,
        cells_per_second,
        model,
    })
}

/// Write one CSV row per cell of an evaluation: path, true class, the diffusion classifier's
/// class, confidence, uncertainty, anomaly score, triage, evaluations and colour gate score and
/// flag (empty and 0 without a gate), its probability of
/// every class (`p_<class>`) and, when the baseline was evaluated on the same cells, the
/// baseline's (`baseline_p_<class>`), so that any figure of the report can be recomputed or
/// broken down cell by cell.
fn write_cells(
    mut w: csv::Writer<std::fs::File>,
    path: &Path,
    run: &DiffusionRun,
    baseline: Option<&[Vec<f32>]>,
) -> CmdResult {
    let mut header: Vec<String> = ["path", "label", "predicted"].map(String::from).to_vec();
    header.extend(diagnosis_header(&CLASSES));
    if baseline.is_some() {
        header.extend(CLASSES.iter().map(|c| format!("baseline_p_{c}")));
    }
    w.write_record(&header).map_err(err)?;
    for (i, d) in run.diagnoses.iter().enumerate() {
        let mut row = vec![
            run.paths[i].clone(),
            CLASSES[run.labels[i]].to_string(),
            CLASSES[d.class].to_string(),
        ];
        row.extend(diagnosis_fields(d));
        if let Some(b) = baseline {
            row.extend(b[i].iter().map(|p| format!("{p:.6}")));
        }
        w.write_record(&row).map_err(err)?;
    }
    w.flush().map_err(err)?;
    eprintln!("per-cell results: {}", path.display());
    Ok(())
}

/// Where `eval` writes: the report, the reliability diagram, and optionally the per-cell CSV
/// and the viewer's sheet.
pub struct EvalOutputs<'a> {
    /// Report JSON.
    pub json: &'a Path,
    /// Reliability diagram SVG.
    pub svg: &'a Path,
    /// Per-cell CSV (`--cells`).
    pub cells: Option<&'a Path>,
    /// The viewer's sheet (`--sheet`).
    pub sheet: Option<&'a Path>,
}

pub fn eval(
    source: &SplitSource,
    anomaly_limit: Option<usize>,
    model_dir: &Path,
    eval_dir: &Path,
    out: EvalOutputs,
) -> CmdResult {
    let EvalOutputs {
        json: json_path,
        svg: svg_path,
        cells: cells_path,
        sheet: sheet_path,
    } = out;
    let k = CLASSES.len();
    // Opened first, so that a path that cannot be written fails before the evaluation.
    let cells_out = cells_path
        .map(|p| {
            csv::Writer::from_path(p)
                .map(|w| (w, p))
                .map_err(|e| format!("--cells {}: {e}", p.display()))
        })
        .transpose()?;
    let run = diffusion_on(source, model_dir, MODEL_STEM, None)?;
    let probs: Vec<Vec<f32>> = run.diagnoses.iter().map(|d| d.probs.clone()).collect();
    let evals: Vec<usize> = run.diagnoses.iter().map(|d| d.evals).collect();
    let triage: Vec<_> = run.diagnoses.iter().map(|d| d.triage).collect();
    let diff = report(&run.labels, &probs, Some(&evals), Some(&triage), k);
    let mut doc = json!({
        "split": source.split.name(),
        "split_size": run.labels.len(),
        "model_sha256": run.model.2,
        "diffusion": diff,
        "diffusion_cells_per_second": run.cells_per_second
    });
    let mut svgs = vec![("diffusion", diff.clone())];
    let mut baseline_probs = None;
    match load_baseline(eval_dir, "cytolens-baseline") {
        Ok((model, card)) => {
            let data = source.at(card.image_size)?;
            let p = softmax_rows(&baseline_logits(&model, &data)?, card.temperature);
            let b = report(&data.labels, &p, None, None, k);
            doc["baseline"] = serde_json::to_value(&b).map_err(err)?;
            svgs.push(("baseline CNN", b));
            // Both models read the same split in the same order; the per-cell file pairs them.
            if data.paths == run.paths {
                baseline_probs = Some(p);
            } else {
                eprintln!("the baseline read other cells than the diffusion model: its probabilities are not in the per-cell file");
            }
        }
        Err(e) => eprintln!("baseline not evaluated: {e}"),
    }
    if let Some((w, path)) = cells_out {
        write_cells(w, path, &run, baseline_probs.as_deref())?;
    }
    anomaly_figures(&mut doc, source, anomaly_limit, eval_dir)?;
    std::fs::write(json_path, serde_json::to_string_pretty(&doc).map_err(err)?).map_err(err)?;
    if let Some(path) = sheet_path {
        let sheet = model_sheet(&run, &diff, &doc, source);
        std::fs::write(path, serde_json::to_string_pretty(&sheet).map_err(err)?)
            .map_err(|e| format!("--sheet {}: {e}", path.display()))?;
        eprintln!("model sheet: {}", path.display());
    }
    if let Some(parent) = svg_path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let refs: Vec<(&str, &model_core::evaluate::ClassifierReport)> =
        svgs.iter().map(|(n, r)| (*n, r)).collect();
    std::fs::write(svg_path, reliability_svg(&refs)).map_err(err)?;
    print_summary(&doc);
    Ok(())
}

/// The viewer's sheet of the run's figures ([`ModelSheet`]), from the same numbers as the
/// report `doc`.
fn model_sheet(
    run: &DiffusionRun,
    diff: &ClassifierReport,
    doc: &serde_json::Value,
    source: &SplitSource,
) -> ModelSheet {
    let (model, version, weights_sha256) = run.model.clone();
    let classes: Vec<String> = CLASSES.iter().map(|c| c.to_string()).collect();
    let triage = diff.triage.as_ref();
    ModelSheet {
        model,
        version,
        weights_sha256,
        data: format!(
            "PBC (Acevedo et al. 2020; one lab, stain and analyser): {} the held-out {} split of pbc/manifest.csv",
            if source.thin.is_empty() {
                "all of"
            } else {
                "a sample of"
            },
            source.split.name()
        ),
        cells: diff.n,
        accuracy: diff.accuracy,
        balanced_accuracy: diff.balanced_accuracy,
        macro_f1: diff.macro_f1,
        ece: diff.ece,
        classes: ModelSheet::class_figures(&diff.confusion, &classes),
        auto_share: triage.map(|t| t.auto),
        auto_accuracy: triage.map(|t| t.auto_accuracy),
        review_share: triage.map(|t| t.review),
        anomaly_share: triage.map(|t| t.anomaly),
        anomaly_auroc: doc["anomaly_auroc_diffusion"].as_f64(),
        baseline_balanced_accuracy: doc["baseline"]["balanced_accuracy"].as_f64(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    }
}

fn print_summary(doc: &serde_json::Value) {
    let split = doc["split"].as_str().unwrap_or("test");
    println!(
        "{:<28} {:>10} {:>10}",
        format!("metric ({split} split)"),
        "diffusion",
        "baseline"
    );
    for key in [
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "ece",
        "accuracy_at_80_coverage",
        "aurc",
        "mean_evals",
    ] {
        let f = |m: &str| {
            doc[m][key]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{v:.4}"))
        };
        println!("{key:<28} {:>10} {:>10}", f("diffusion"), f("baseline"));
    }
    for key in [
        "anomaly_auroc_diffusion",
        "anomaly_auroc_diffusion_confidence",
        "anomaly_auroc_diffusion_conditioning_gain",
        "anomaly_auroc_baseline_max_softmax",
        "diffusion_cells_per_second",
    ] {
        if let Some(v) = doc[key].as_f64() {
            println!("{key:<40} {v:.4}");
        }
    }
}

/// Leave-erythroblast-out experiment: AUROC of the anomaly scores for erythroblasts against
/// the other cells, for the diffusion model and the baseline (max-softmax).
fn anomaly_figures(
    doc: &mut serde_json::Value,
    source: &SplitSource,
    anomaly_limit: Option<usize>,
    eval_dir: &Path,
) -> CmdResult {
    // Anomaly: models trained without erythroblasts; AUROC of erythroblast vs the rest.
    let source = anomaly_limit.map_or_else(|| source.clone(), |n| source.thinned(n));
    let ery = model_core::classes::class_index("erythroblast").unwrap_or(2);
    let is_ery = |labels: &[usize]| -> Vec<bool> { labels.iter().map(|&l| l == ery).collect() };
    // A card without "no class" rounds (from before the conditioning gain) gets them here so
    // that the gain can be reported: they add evaluations but change no class's errors, so the
    // z-score and the confidence stay those of the card's own settings. A card with them is
    // evaluated exactly as fitted and shipped (screen included).
    let uncond = Some(ClassifierSettings::default().min_rounds);
    match diffusion_on(
        &source,
        eval_dir,
        "cytolens-diffusion-no-erythroblast",
        uncond,
    ) {
        Ok(DiffusionRun {
            diagnoses: d,
            labels,
            ..
        }) => {
            let positive = is_ery(&labels);
            doc["anomaly_cells"] = json!(labels.len());
            doc["anomaly_erythroblasts"] = json!(positive.iter().filter(|p| **p).count());
            let score: Vec<f64> = d.iter().map(|x| x.anomaly as f64).collect();
            doc["anomaly_auroc_diffusion"] = json!(auroc(&score, &positive));
            let unc: Vec<f64> = d.iter().map(|x| 1.0 - x.confidence as f64).collect();
            doc["anomaly_auroc_diffusion_confidence"] = json!(auroc(&unc, &positive));
            let gain: Option<Vec<f64>> = d
                .iter()
                .map(|x| x.conditioning_gain.map(f64::from))
                .collect();
            match gain {
                Some(gain) => {
                    doc["anomaly_auroc_diffusion_conditioning_gain"] =
                        json!(auroc(&gain, &positive))
                }
                None => eprintln!("conditioning gain missing for some cells: not reported"),
            }
        }
        Err(e) => eprintln!("diffusion anomaly model not evaluated: {e}"),
    }
    match load_baseline(eval_dir, "cytolens-baseline-no-erythroblast") {
        Ok((model, card)) => {
            let data = source.at(card.image_size)?;
            let positive = is_ery(&data.labels);
            doc["anomaly_cells"] = json!(data.len());
            doc["anomaly_erythroblasts"] = json!(positive.iter().filter(|p| **p).count());
            let p = softmax_rows(&baseline_logits(&model, &data)?, card.temperature);
            let score: Vec<f64> = p
                .iter()
                .map(|r| 1.0 - r.iter().copied().fold(0.0, f32::max) as f64)
                .collect();
            doc["anomaly_auroc_baseline_max_softmax"] = json!(auroc(&score, &positive));
        }
        Err(e) => eprintln!("baseline anomaly model not evaluated: {e}"),
    }
    Ok(())
}

pub fn eval_anomaly(
    source: &SplitSource,
    anomaly_limit: Option<usize>,
    eval_dir: &Path,
    json_path: &Path,
) -> CmdResult {
    let mut doc: serde_json::Value = match std::fs::read_to_string(json_path) {
        Ok(s) => serde_json::from_str(&s).map_err(err)?,
        Err(_) => json!({}),
    };
    anomaly_figures(&mut doc, source, anomaly_limit, eval_dir)?;
    std::fs::write(json_path, serde_json::to_string_pretty(&doc).map_err(err)?).map_err(err)?;
    print_summary(&doc);
    Ok(())
}
