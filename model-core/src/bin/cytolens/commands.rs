//! The CLI's commands beyond training the denoiser.

use burn::prelude::*;
use model_core::baseline::{
    load_baseline_file, train_baseline as train_cnn, BaselineCard, BaselineCnn, BaselineConfig,
};
use model_core::calibrate::{
    accuracy, calibrate as fit_card, fit_temperature, Calibration, FullEval,
};
use model_core::checkpoint::Checkpoint;
use model_core::classes::CLASSES;
use model_core::classify::ClassifierSettings;
use model_core::dataset::{load_split, CellSet, Split};
use model_core::decode::decode_with_notes;
use model_core::diagnosis::{anomaly_score, Diagnosis, ModelCard, Triage};
use model_core::engine::CellClassifier;
use model_core::evaluate::{
    benchmark, diagnose_all, full_evaluations, plan_strata, reliability_svg, report,
};
use model_core::metrics::{auroc, balanced_accuracy, confusion, recalls};
use model_core::preprocess::to_model_input;
use model_core::train::TrainOptions;
use model_core::weights::{ModelFiles, MODEL_STEM};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

type CmdResult = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// One split of the PBC data, loaded at whatever side a model was trained at (each side has
/// its own file in the disk cache) and thinned to evenly spread cells: the same cells, in the
/// same order, at every side.
#[derive(Clone)]
pub struct SplitSource {
    /// Root of the shared data (holds `pbc/`).
    pub data_root: PathBuf,
    /// Which split.
    pub split: Split,
    /// Successive `CellSet::subsample` sizes (empty: every cell).
    pub thin: Vec<usize>,
}

impl SplitSource {
    /// Every cell of `split` under `data_root`.
    pub fn new(data_root: &Path, split: Split) -> Self {
        Self {
            data_root: data_root.to_path_buf(),
            split,
            thin: Vec::new(),
        }
    }

    /// The same source, further thinned to `n` evenly spread cells.
    pub fn thinned(&self, n: usize) -> Self {
        let mut s = self.clone();
        s.thin.push(n);
        s
    }

    /// The cells at `size` x `size` pixels.
    pub fn at(&self, size: usize) -> Result<CellSet, String> {
        let mut cells =
            load_split(&self.data_root, self.split, size, Path::new("runs/cache")).map_err(err)?;
        for &n in &self.thin {
            cells = cells.subsample(n);
        }
        Ok(cells)
    }
}

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

fn load_baseline(dir: &Path, stem: &str) -> Result<(BaselineCnn, BaselineCard), String> {
    load_baseline_file(&dir.join(format!("{stem}.bpk")), &Device::flex()).map_err(err)
}

fn baseline_logits(model: &BaselineCnn, data: &CellSet) -> Result<Vec<Vec<f32>>, String> {
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

fn softmax_rows(logits: &[Vec<f32>], t: f32) -> Vec<Vec<f32>> {
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

/// Choices of `calibrate` beyond where the model comes from and goes.
#[derive(Clone, Copy)]
pub struct CalibrateOptions {
    /// Val cells used.
    pub val_limit: usize,
    /// Accuracy the auto-accepted val cells must reach.
    pub target: f32,
    /// Write f16 weights.
    pub half: bool,
    /// Dihedral views per round ([`ClassifierSettings::views`]).
    pub views: bool,
    /// "No class" rounds ([`ClassifierSettings::uncond_rounds`]); the anomaly score is then the
    /// conditioning gain.
    pub uncond_rounds: usize,
    /// For a run trained without a class: val cells of that class to evaluate as well, for a
    /// val AUROC of the anomaly score (a diagnostic; the fit never sees them). 0: none.
    pub ood_limit: usize,
    /// Timestep range the rounds are drawn from (`None`: the default of [`ClassifierSettings`]).
    pub t_range: Option<(usize, usize)>,
    /// Fit the score weights and offsets class-balanced ([`ClassifierSettings::balanced_fit`]).
    pub balanced: bool,
    /// Share of rightly classified val cells each screen may cost
    /// ([`ClassifierSettings::screen_miss`]); 0: no screen.
    pub screen_miss: f32,
    /// Classes every screen keeps ([`ClassifierSettings::screen_keep`]); at least 1.
    pub screen_keep: usize,
}

/// Write each held-out val cell of a calibration (classified under the settings fitted on the
/// other half of val; `held_out`, `confidence`, `anomaly` and `triage` per cell of `val`) as a
/// CSV row: path, true and predicted class, confidence, anomaly score and triage, so that two
/// models can be compared cell by cell (a paired test).
fn write_held_out(path: &Path, val: &CellSet, fit: &Calibration, triage: &[Triage]) -> CmdResult {
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    w.write_record([
        "path",
        "label",
        "predicted",
        "confidence",
        "anomaly",
        "triage",
    ])
    .map_err(err)?;
    for (i, s) in fit.held_out.iter().enumerate() {
        let (c, a) = (fit.confidence[i], fit.anomaly[i]);
        w.write_record([
            val.paths[i].as_str(),
            CLASSES[val.labels[i]],
            CLASSES[s.best()],
            &format!("{c:.5}"),
            &format!("{a:.4}"),
            triage[i].name(),
        ])
        .map_err(err)?;
    }
    w.flush().map_err(err)?;
    eprintln!("held-out val classifications: {}", path.display());
    Ok(())
}

pub fn calibrate(
    run: &Path,
    out: &Path,
    stem: &str,
    val: &SplitSource,
    o: &CalibrateOptions,
) -> CmdResult {
    let CalibrateOptions {
        val_limit,
        target,
        half,
        views,
        uncond_rounds,
        ood_limit,
        t_range,
        balanced,
        screen_miss,
        screen_keep,
    } = *o;
    // Refuse bad settings before reading anything.
    if !(0.0..1.0).contains(&screen_miss) {
        return Err(format!(
            "--screen-miss must be at least 0 and below 1, not {screen_miss}"
        ));
    }
    if screen_keep == 0 {
        return Err("--screen-keep must be at least 1 (the leading class)".into());
    }
    let opts = TrainOptions::read(run).map_err(err)?;
    let weights = std::fs::read(run.join("ckpt/ema.bpk")).map_err(err)?;
    let mut card = ModelCard::uncalibrated(opts.model.clone());
    card.classifier.excluded = opts.exclude_class.into_iter().collect();
    card.classifier.views = views;
    card.classifier.uncond_rounds = uncond_rounds;
    card.classifier.balanced_fit = balanced;
    card.classifier.screen_miss = screen_miss;
    card.classifier.screen_keep = screen_keep;
    if let Some(t) = t_range {
        card.classifier.t_range = t;
    }
    let files = ModelFiles {
        card: card.clone(),
        weights,
    };
    let clf = files.classifier(Device::flex()).map_err(err)?;
    let all_val = &val.at(card.denoiser.image_size)?;
    let val = match opts.exclude_class {
        Some(ex) => all_val.filter(|l| l != ex),
        None => all_val.clone(),
    }
    .subsample(val_limit);
    let strata = plan_strata(&card.classifier, card.denoiser.image_size);
    let key = EvalCacheKey {
        weights_sha256: files.sha256(),
        val_cells: val.len(),
        seed: card.classifier.seed,
        t_range: card.classifier.t_range,
        strata: strata.clone(),
        views,
        uncond_rounds,
    };
    let cache_named = |what: &str, n: usize, u: usize| {
        run.join(format!(
            "{what}-{n}{}-u{u}.json",
            if views { "-views" } else { "" }
        ))
    };
    let cache_name = |what: &str, n: usize| cache_named(what, n, uncond_rounds);
    // Caches of the same cells with more "no class" rounds hold these evaluations too.
    let max_rounds = card.classifier.max_rounds;
    let wider = |what: &str, n: usize| -> Vec<PathBuf> {
        (uncond_rounds + 1..=max_rounds)
            .map(|u| cache_named(what, n, u))
            .collect()
    };
    let evals = cached_full_evaluations(
        &cache_name("val-evals", val.len()),
        &wider("val-evals", val.len()),
        &key,
        || evaluate_val(&clf, &val, "full evaluation"),
    )?;
    let fit = fit_card(card, &evals, &strata, target, 0.99);
    let card = &fit.card;
    // Held-out figures of the fit itself: each half of these val cells classified under the
    // settings fitted on the other half.
    let truth: Vec<usize> = evals.iter().map(|e| e.label).collect();
    let pred: Vec<usize> = fit.held_out.iter().map(|s| s.best()).collect();
    let matrix = confusion(&truth, &pred, CLASSES.len());
    eprintln!(
        "val accuracy, each half under the settings fitted on the other: {:.3} (balanced {:.3}), mean evals {:.1}",
        accuracy(&fit.held_out, &evals),
        balanced_accuracy(&matrix),
        fit.held_out.iter().map(|s| s.evals).sum::<usize>() as f64 / evals.len().max(1) as f64
    );
    let per_class: Vec<String> = CLASSES
        .iter()
        .zip(recalls(&matrix))
        .filter_map(|(name, r)| Some(format!("{name} {:.2}", r?)))
        .collect();
    eprintln!("  held-out recall per class: {}", per_class.join(", "));
    let confidence: Vec<f64> = fit.confidence.iter().map(|&c| c as f64).collect();
    let correct: Vec<bool> = fit
        .held_out
        .iter()
        .zip(&evals)
        .map(|(s, e)| s.best() == e.label)
        .collect();
    // The card's triage applied to those held-out cells (its thresholds were fitted on all of
    // them, so this is the triage the fit aimed at, not a held-out estimate of it).
    let triage: Vec<Triage> = fit
        .confidence
        .iter()
        .zip(&fit.anomaly)
        .map(|(&c, &a)| card.triage.decide(c, a))
        .collect();
    let (mut auto, mut auto_right, mut review, mut flagged) = (0, 0, 0, 0);
    for (t, &ok) in triage.iter().zip(&correct) {
        match t {
            Triage::Auto => {
                auto += 1;
                auto_right += usize::from(ok);
            }
            Triage::Review => review += 1,
            Triage::Anomaly => flagged += 1,
        }
    }
    let pct = |n: usize| 100.0 * n as f64 / correct.len().max(1) as f64;
    eprintln!(
        "val ECE of those held-out classifications (15 bins): {:.4}; {:.1} % of them over the anomaly threshold (leave-one-out)",
        model_core::metrics::expected_calibration_error(&confidence, &correct, 15),
        pct(flagged)
    );
    eprintln!(
        "  triage of those cells: {:.1} % auto ({:.3} right), {:.1} % review, {:.1} % anomaly",
        pct(auto),
        auto_right as f64 / auto.max(1) as f64,
        pct(review),
        pct(flagged)
    );
    write_held_out(
        &cache_name("val-held-out", val.len()).with_extension("csv"),
        &val,
        &fit,
        &triage,
    )?;
    eprintln!("  held-out reliability: confidence bin, cells, mean confidence, accuracy");
    for b in model_core::metrics::reliability(&confidence, &correct, 15) {
        if b.count > 0 {
            eprintln!(
                "    [{:.2}, {:.2})  {:4}  {:.3}  {:.3}",
                b.lo, b.hi, b.count, b.confidence, b.accuracy
            );
        }
    }
    if let (Some(ex), true) = (opts.exclude_class, ood_limit > 0) {
        let ood = all_val.filter(|l| l == ex).subsample(ood_limit);
        let ood_key = EvalCacheKey {
            val_cells: ood.len(),
            ..key.clone()
        };
        let ood_evals = cached_full_evaluations(
            &cache_name("val-ood-evals", ood.len()),
            &wider("val-ood-evals", ood.len()),
            &ood_key,
            || evaluate_val(&clf, &ood, "left-out class"),
        )?;
        // The fitted classes' cells score under statistics fitted without them (leave-one-out),
        // the left-out class's under the card: none was seen by the statistics that score it.
        let ood_values = ood_evals.iter().map(|e| {
            let s = model_core::classify::replay(&e.raw, &e.uncond, &strata, &card.classifier);
            anomaly_score(&s, s.best(), &card.anomaly)
        });
        let values: Vec<f64> = fit
            .anomaly
            .iter()
            .copied()
            .chain(ood_values)
            .map(f64::from)
            .collect();
        let positive: Vec<bool> = (0..values.len()).map(|i| i >= evals.len()).collect();
        eprintln!(
            "val AUROC of the anomaly score, {} ({} cells) against the fitted classes ({} cells, leave-one-out): {:.3}",
            CLASSES[ex],
            ood_evals.len(),
            evals.len(),
            auroc(&values, &positive)
        );
    }
    let scores: Vec<_> = evals
        .iter()
        .map(|e| model_core::classify::replay(&e.raw, &e.uncond, &strata, &card.classifier))
        .collect();
    eprintln!(
        "val accuracy with the fitted settings {:.3} of {}, mean evals {:.1} (replayed; the fit saw these cells)",
        accuracy(&scores, &evals),
        evals.len(),
        scores.iter().map(|s| s.evals).sum::<usize>() as f64 / scores.len().max(1) as f64
    );
    eprintln!(
        "temperature {:.4}, auto threshold {:.3}, anomaly threshold {:.2}\n  test weights {:?}\n  score weights {:?}",
        card.temperature,
        card.triage.auto_min_confidence,
        card.triage.anomaly_threshold,
        card.classifier.stratum_weights,
        card.classifier.score_weights
    );
    let weights = if half {
        model_core::weights::half_precision(&files.weights, card).map_err(err)?
    } else {
        files.weights
    };
    eprintln!(
        "weights: {} bytes ({})",
        weights.len(),
        if half { "f16" } else { "f32" }
    );
    ModelFiles {
        card: fit.card,
        weights,
    }
    .write(out, stem)
    .map_err(err)
}

/// What a cached full val evaluation depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EvalCacheKey {
    weights_sha256: String,
    val_cells: usize,
    seed: u64,
    t_range: (usize, usize),
    strata: Vec<usize>,
    /// Dihedral views per round (caches written before the setting existed had none).
    #[serde(default)]
    views: bool,
    /// "No class" rounds recorded (none in older caches).
    #[serde(default)]
    uncond_rounds: usize,
}

#[derive(Serialize, Deserialize)]
struct EvalCache {
    key: EvalCacheKey,
    evals: Vec<FullEval>,
}

/// The full val evaluations of `key`, read from `path` when it holds exactly these (same
/// weights, cells and plan), or else from the first of `wider` that holds them with more "no
/// class" rounds (each cell's extra "no class" errors dropped: the rounds are the same draws);
/// else computed by `compute` and written to `path`. Refitting or analysing a calibration then
/// costs seconds instead of minutes of denoising.
fn cached_full_evaluations(
    path: &Path,
    wider: &[PathBuf],
    key: &EvalCacheKey,
    compute: impl FnOnce() -> Result<Vec<FullEval>, String>,
) -> Result<Vec<FullEval>, String> {
    let read = |p: &Path| -> Option<EvalCache> {
        let text = std::fs::read_to_string(p).ok()?;
        match serde_json::from_str::<EvalCache>(&text) {
            Ok(cache) => Some(cache),
            Err(e) => {
                eprintln!("  {} is unreadable ({e}); not used", p.display());
                None
            }
        }
    };
    if let Some(cache) = read(path) {
        if cache.key == *key {
            eprintln!("  reusing the full evaluations in {}", path.display());
            return Ok(cache.evals);
        }
        eprintln!(
            "  {} is for other weights or cells; not used",
            path.display()
        );
    }
    for p in wider {
        let Some(cache) = read(p) else { continue };
        let same_otherwise = EvalCacheKey {
            uncond_rounds: key.uncond_rounds,
            ..cache.key.clone()
        } == *key;
        if same_otherwise && cache.key.uncond_rounds > key.uncond_rounds {
            eprintln!(
                "  reusing the full evaluations in {} (first {} of its {} \"no class\" rounds)",
                p.display(),
                key.uncond_rounds,
                cache.key.uncond_rounds
            );
            let mut evals = cache.evals;
            for e in &mut evals {
                e.uncond.truncate(key.uncond_rounds);
            }
            return Ok(evals);
        }
    }
    let evals = compute()?;
    let cache = EvalCache {
        key: key.clone(),
        evals,
    };
    std::fs::write(path, serde_json::to_string(&cache).map_err(err)?).map_err(err)?;
    Ok(cache.evals)
}

/// Rewrite a model's weights in half precision (the card is kept, its hash updated).
pub fn to_half(model_dir: &Path, stem: &str) -> CmdResult {
    let files = ModelFiles::read(model_dir, stem).map_err(err)?;
    let weights = model_core::weights::half_precision(&files.weights, &files.card).map_err(err)?;
    eprintln!("{} -> {} bytes", files.weights.len(), weights.len());
    ModelFiles {
        card: files.card,
        weights,
    }
    .write(model_dir, stem)
    .map_err(err)
}

/// Full evaluations (every class, every round) of the `val` cells, with progress on stderr.
fn evaluate_val(clf: &CellClassifier, val: &CellSet, what: &str) -> Result<Vec<FullEval>, String> {
    let start = Instant::now();
    let evals = full_evaluations(clf, &val.crops(), &val.labels, |n| {
        eprint!("\r  {what} {n}/{}", val.len())
    })
    .map_err(err)?;
    eprintln!("\n  {:.0} s", start.elapsed().as_secs_f64());
    Ok(evals)
}

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
    })
}

/// Write one CSV row per cell of an evaluation: path, true class, the diffusion classifier's
/// class, confidence, uncertainty, anomaly score, triage and evaluations, its probability of
/// every class (`p_<class>`) and, when the baseline was evaluated on the same cells, the
/// baseline's (`baseline_p_<class>`), so that any figure of the report can be recomputed or
/// broken down cell by cell.
fn write_cells(
    mut w: csv::Writer<std::fs::File>,
    path: &Path,
    run: &DiffusionRun,
    baseline: Option<&[Vec<f32>]>,
) -> CmdResult {
    let mut header: Vec<String> = [
        "path",
        "label",
        "predicted",
        "confidence",
        "uncertainty",
        "anomaly",
        "triage",
        "evals",
    ]
    .map(String::from)
    .to_vec();
    header.extend(CLASSES.iter().map(|c| format!("p_{c}")));
    if baseline.is_some() {
        header.extend(CLASSES.iter().map(|c| format!("baseline_p_{c}")));
    }
    w.write_record(&header).map_err(err)?;
    for (i, d) in run.diagnoses.iter().enumerate() {
        let mut row = vec![
            run.paths[i].clone(),
            CLASSES[run.labels[i]].to_string(),
            CLASSES[d.class].to_string(),
            format!("{:.5}", d.confidence),
            format!("{:.5}", d.uncertainty),
            format!("{:.4}", d.anomaly),
            d.triage.name().to_string(),
            d.evals.to_string(),
        ];
        row.extend(d.probs.iter().map(|p| format!("{p:.6}")));
        if let Some(b) = baseline {
            row.extend(b[i].iter().map(|p| format!("{p:.6}")));
        }
        w.write_record(&row).map_err(err)?;
    }
    w.flush().map_err(err)?;
    eprintln!("per-cell results: {}", path.display());
    Ok(())
}

pub fn eval(
    source: &SplitSource,
    anomaly_limit: Option<usize>,
    model_dir: &Path,
    eval_dir: &Path,
    json_path: &Path,
    svg_path: &Path,
    cells_path: Option<&Path>,
) -> CmdResult {
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
    if let Some(parent) = svg_path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let refs: Vec<(&str, &model_core::evaluate::ClassifierReport)> =
        svgs.iter().map(|(n, r)| (*n, r)).collect();
    std::fs::write(svg_path, reliability_svg(&refs)).map_err(err)?;
    print_summary(&doc);
    Ok(())
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
                if !notes.is_empty() {
                    line["notes"] = json!(notes);
                }
                println!("{line}");
            } else {
                let at = bbox.map(|b| format!("\tbox {b:?}")).unwrap_or_default();
                println!("{name}{at}\t{class}\tconfidence {:.3}\tuncertainty {:.3}\tanomaly {:.2}\t{}\t{} evals", d.confidence, d.uncertainty, d.anomaly, d.triage.name(), d.evals);
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

pub fn detect_eval(data: &Path, verbose: bool) -> CmdResult {
    use model_core::detect::{detect, match_boxes, DetectOptions};
    let fields = model_core::bccd::fields(data).map_err(err)?;
    let (mut tp, mut np, mut nt) = (0, 0, 0);
    let mut diam_err = Vec::new();
    let mut rbc_rel = Vec::new();
    let mut single = 0;
    let start = Instant::now();
    for (path, ann) in &fields {
        let img = image::open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .to_rgb8();
        let f = detect(
            &img,
            &DetectOptions {
                rbc_diameter_px: None,
            },
        );
        single += usize::from(f.single_cell);
        let pred: Vec<[u32; 4]> = f.cells.iter().map(|c| c.bbox).collect();
        let (t, p, n) = match_boxes(&pred, &ann.wbc, 0.5);
        tp += t;
        np += p;
        nt += n;
        if let (Some(d), Some(truth)) = (
            f.rbc_diameter_px,
            ann.rbc_diameter(img.width(), img.height()),
        ) {
            diam_err.push(((d - truth).abs() / truth) as f64);
        }
        if !ann.rbc.is_empty() {
            rbc_rel.push((f.rbc_count as f64 - ann.rbc.len() as f64).abs() / ann.rbc.len() as f64);
        }
        if verbose {
            println!("{}\twbc {t}/{n} (pred {p})\trbc {} (annotated {})\tplatelets {} (annotated {})\tdiam {:?}", path.display(), f.rbc_count, ann.rbc.len(), f.platelet_count, ann.platelets.len(), f.rbc_diameter_px);
        }
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / fields.len().max(1) as f64;
    println!("BCCD fields: {}", fields.len());
    println!(
        "white cells: recall {:.3} ({tp}/{nt}), precision {:.3} ({tp}/{np}) at IoU 0.5",
        tp as f64 / nt.max(1) as f64,
        tp as f64 / np.max(1) as f64
    );
    println!(
        "red-cell count: relative error against the annotated boxes: median {:.3}, mean {:.3}",
        median(&rbc_rel),
        rbc_rel.iter().sum::<f64>() / rbc_rel.len().max(1) as f64
    );
    println!(
        "red-cell diameter: median relative error {:.3} against the annotated boxes' mean side ({} fields)",
        median(&diam_err),
        diam_err.len()
    );
    println!("fields taken for single-cell images: {single}");
    println!("detection time: {ms:.1} ms per 640x480 field (native, 1 thread)");
    Ok(())
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

pub fn tune(model_dir: &Path, val: &SplitSource) -> CmdResult {
    use model_core::classify::replay;
    let files = ModelFiles::read(model_dir, MODEL_STEM).map_err(err)?;
    let val = &val.at(files.card.denoiser.image_size)?;
    let clf = files.classifier(Device::flex()).map_err(err)?;
    let evals = evaluate_val(&clf, val, "full evaluation")?;
    let base = files.card.classifier.clone();
    let strata = plan_strata(&base, files.card.denoiser.image_size);
    let n = base.max_rounds;
    let variants: Vec<(&str, ClassifierSettings)> = vec![
        ("shipped settings", base.clone()),
        (
            "no elimination (all 12 rounds)",
            ClassifierSettings {
                test_strictness: f32::INFINITY,
                ..base.clone()
            },
        ),
        (
            "no elimination, uniform weights",
            ClassifierSettings {
                test_strictness: f32::INFINITY,
                stratum_weights: vec![1.0; n],
                score_weights: vec![1.0; n],
                ..base.clone()
            },
        ),
        (
            "score weights = test weights",
            ClassifierSettings {
                score_weights: Vec::new(),
                ..base.clone()
            },
        ),
        (
            "no class bias",
            ClassifierSettings {
                class_bias: Vec::new(),
                ..base.clone()
            },
        ),
        (
            "min 6 rounds",
            ClassifierSettings {
                min_rounds: 6,
                ..base.clone()
            },
        ),
        (
            "strictness 2x",
            ClassifierSettings {
                test_strictness: 2.0,
                ..base.clone()
            },
        ),
    ];
    // Val accuracy and mean evaluations of `s` replayed on `evals`.
    let replayed = |name: &str, evals: &[FullEval], s: &ClassifierSettings| {
        let scores: Vec<_> = evals
            .iter()
            .map(|e| replay(&e.raw, &e.uncond, &strata, s))
            .collect();
        let acc = accuracy(&scores, evals);
        let ev = scores.iter().map(|s| s.evals).sum::<usize>() as f64 / scores.len() as f64;
        println!("{name:<36} val accuracy {acc:.3}  mean evals {ev:.1}");
    };
    for (name, s) in variants {
        replayed(name, &evals, &s);
    }
    // The other choice of dihedral views changes the denoiser's inputs: a second full evaluation,
    // replayed under otherwise unchanged settings.
    let mut other = files.clone();
    other.card.classifier.views = !base.views;
    let clf = other.classifier(Device::flex()).map_err(err)?;
    let what = format!("full evaluation, views {}:", !base.views);
    let evals = evaluate_val(&clf, val, &what)?;
    let s = &other.card.classifier;
    let name = if s.views {
        "dihedral views"
    } else {
        "no dihedral views"
    };
    replayed(name, &evals, s);
    Ok(())
}

/// Median of a non-empty slice (0 for an empty one).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
