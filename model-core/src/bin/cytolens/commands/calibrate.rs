//! `calibrate` (the diffusion classifier on val, with the cached full evaluations) and `half`.

use super::{err, CmdResult, SplitSource};
use burn::prelude::*;
use model_core::calibrate::{accuracy, calibrate as fit_card, Calibration, FullEval};
use model_core::classes::CLASSES;
#[cfg(doc)]
use model_core::classify::ClassifierSettings;
use model_core::colour_gate::ColourGate;
use model_core::dataset::CellSet;
use model_core::diagnosis::{anomaly_score, ModelCard, Triage};
use model_core::engine::CellClassifier;
use model_core::evaluate::{full_evaluations, plan_strata};
use model_core::focus_gate::FocusGate;
use model_core::metrics::{auroc, balanced_accuracy, confusion, recalls};
use model_core::train::TrainOptions;
use model_core::weights::ModelFiles;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Share of the val cells the colour gate passes ([`ColourGate::fit`]).
    pub colour_quantile: f32,
    /// Share of the val cells the focus gate passes ([`FocusGate::fit_counted`]).
    pub focus_quantile: f32,
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
        colour_quantile,
        focus_quantile,
    } = *o;
    // Refuse bad settings before reading anything.
    model_core::colour_gate::check_quantile("colour gate", colour_quantile).map_err(err)?;
    model_core::colour_gate::check_quantile("focus gate", focus_quantile).map_err(err)?;
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
    let mut fit = fit_card(card, &evals, &strata, target, 0.99);
    fit.card.colour_gate = Some(fit_gate(&val, colour_quantile)?);
    fit.card.focus_gate = Some(fit_focus_gate(&val, focus_quantile)?);
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

/// The colour gate fitted on `val`'s crops, with its figures on stderr.
fn fit_gate(val: &CellSet, quantile: f32) -> Result<ColourGate, String> {
    let crops = val.crops();
    let (gate, flagged) = ColourGate::fit_counted(&crops, quantile).map_err(err)?;
    eprintln!(
        "colour gate: threshold {:.2} (the {} quantile of {} val cells' scores; {flagged} of them above it)",
        gate.threshold,
        quantile,
        crops.len()
    );
    Ok(gate)
}

/// Fit the colour gate of the model in `model_dir` on every val cell of its classes and write
/// its card ([`refit_card`]).
pub fn colour_gate(model_dir: &Path, stem: &str, val: &SplitSource, quantile: f32) -> CmdResult {
    model_core::colour_gate::check_quantile("colour gate", quantile).map_err(err)?;
    refit_card(model_dir, stem, val, |card, cells| {
        card.colour_gate = Some(fit_gate(cells, quantile)?);
        Ok(())
    })
}

/// Fit one part of the card of the model in `model_dir` (`fit`) on every val cell of its
/// classes (its excluded classes left out, as `calibrate` does) and write the card; the
/// weights and every other fitted value stay as they are.
fn refit_card(
    model_dir: &Path,
    stem: &str,
    val: &SplitSource,
    fit: impl FnOnce(&mut ModelCard, &CellSet) -> CmdResult,
) -> CmdResult {
    let mut files = ModelFiles::read(model_dir, stem).map_err(err)?;
    let excluded = files.card.classifier.excluded.clone();
    let cells = val
        .at(files.card.denoiser.image_size)?
        .filter(|l| !excluded.contains(&l));
    fit(&mut files.card, &cells)?;
    files.write(model_dir, stem).map_err(err)
}

/// The focus gate fitted on `val`'s crops, with its figures on stderr.
fn fit_focus_gate(val: &CellSet, quantile: f32) -> Result<FocusGate, String> {
    let crops = val.crops();
    let (gate, flagged) = FocusGate::fit_counted(&crops, quantile).map_err(err)?;
    eprintln!(
        "focus gate: sharpness threshold {:.3} (the {:.4} quantile of {} val cells' sharpness; {flagged} of them under it)",
        gate.threshold,
        1.0 - quantile,
        crops.len()
    );
    Ok(gate)
}

/// Fit the focus gate of the model in `model_dir` on every val cell of its classes and write
/// its card ([`refit_card`]).
pub fn focus_gate(model_dir: &Path, stem: &str, val: &SplitSource, quantile: f32) -> CmdResult {
    model_core::colour_gate::check_quantile("focus gate", quantile).map_err(err)?;
    refit_card(model_dir, stem, val, |card, cells| {
        card.focus_gate = Some(fit_focus_gate(cells, quantile)?);
        Ok(())
    })
}

/// Full evaluations (every class, every round) of the `val` cells, with progress on stderr.
pub(super) fn evaluate_val(
    clf: &CellClassifier,
    val: &CellSet,
    what: &str,
) -> Result<Vec<FullEval>, String> {
    let start = Instant::now();
    let evals = full_evaluations(clf, &val.crops(), &val.labels, |n| {
        eprint!("\r  {what} {n}/{}", val.len())
    })
    .map_err(err)?;
    eprintln!("\n  {:.0} s", start.elapsed().as_secs_f64());
    Ok(evals)
}
