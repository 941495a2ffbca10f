//! Native evaluation drivers: full val passes for calibration, batched diagnosis of a split,
//! and the metrics report.

use crate::calibrate::FullEval;
use crate::classify::{plan_rounds, ClassifierRun, ClassifierSettings};
use crate::diagnosis::{Diagnosis, Triage};
use crate::engine::CellClassifier;
use crate::error::Result;
use crate::metrics::*;
use crate::preprocess::CellCrop;
use serde::Serialize;
use std::time::Instant;

/// Cells classified together (their active classes share each forward pass).
pub const CELLS_PER_RUN: usize = 16;

/// The strata of the classifier's rounds, in plan order.
pub fn plan_strata(settings: &ClassifierSettings, size: usize) -> Vec<usize> {
    plan_rounds(settings, size)
        .iter()
        .map(|r| r.stratum)
        .collect()
}

/// Evaluate every class in every round (no elimination) for calibration.
pub fn full_evaluations(
    clf: &CellClassifier,
    cells: &[CellCrop],
    labels: &[usize],
    progress: impl Fn(usize),
) -> Result<Vec<FullEval>> {
    let mut settings = clf.card.classifier.clone();
    settings.test_strictness = f32::INFINITY;
    settings.stratum_scale = vec![1.0; settings.max_rounds];
    settings.stratum_weights = vec![1.0; settings.max_rounds];
    settings.score_weights = Vec::new();
    let k = clf.card.denoiser.num_classes;
    let mut out = Vec::with_capacity(cells.len());
    for (chunk_i, chunk) in cells.chunks(CELLS_PER_RUN).enumerate() {
        let mut run = ClassifierRun::new(chunk.to_vec(), k, settings.clone());
        clf.scores(&mut run)?;
        for (i, s) in run.into_scores().into_iter().enumerate() {
            let raw = (0..k)
                .map(|c| {
                    s.errors[c]
                        .iter()
                        .map(|e| e.unwrap_or(f32::INFINITY))
                        .collect()
                })
                .collect();
            out.push(FullEval {
                raw,
                label: labels[chunk_i * CELLS_PER_RUN + i],
                uncond: s.uncond_errors,
            });
        }
        progress(out.len());
    }
    Ok(out)
}

/// Diagnose cells in batches with the live classifier (early elimination on).
pub fn diagnose_all(
    clf: &CellClassifier,
    cells: &[CellCrop],
    progress: impl Fn(usize),
) -> Result<Vec<Diagnosis>> {
    let mut out = Vec::with_capacity(cells.len());
    for chunk in cells.chunks(CELLS_PER_RUN) {
        out.extend(clf.diagnose(chunk.to_vec())?);
        progress(out.len());
    }
    Ok(out)
}

/// Metrics of one classifier on one split.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierReport {
    /// Cells evaluated.
    pub n: usize,
    /// Plain accuracy.
    pub accuracy: f64,
    /// Mean per-class recall.
    pub balanced_accuracy: f64,
    /// Macro F1.
    pub macro_f1: f64,
    /// ECE, 15 equal-width bins on the top-class confidence.
    pub ece: f64,
    /// Accuracy of the 80 % most confident cells.
    pub accuracy_at_80_coverage: f64,
    /// Area under the risk-coverage curve.
    pub aurc: f64,
    /// Risk-coverage curve at 5 % coverage steps.
    pub risk_coverage: Vec<(f64, f64)>,
    /// Reliability diagram.
    pub reliability: Vec<ReliabilityBin>,
    /// Confusion matrix `[truth][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Mean denoiser evaluations per cell (diffusion only).
    pub mean_evals: Option<f64>,
    /// Fraction of cells triaged auto / review / anomaly, and accuracy of the auto ones.
    pub triage: Option<TriageReport>,
}

/// Triage outcome on a split.
#[derive(Debug, Clone, Serialize)]
pub struct TriageReport {
    /// Fraction auto-accepted.
    pub auto: f64,
    /// Fraction sent to review.
    pub review: f64,
    /// Fraction flagged as anomalies.
    pub anomaly: f64,
    /// Accuracy of the auto-accepted cells.
    pub auto_accuracy: f64,
}

/// Compute the report from predictions.
pub fn report(
    labels: &[usize],
    probs: &[Vec<f32>],
    evals: Option<&[usize]>,
    triage: Option<&[Triage]>,
    classes: usize,
) -> ClassifierReport {
    let pred: Vec<usize> = probs
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect();
    let conf: Vec<f64> = probs.iter().zip(&pred).map(|(p, &i)| p[i] as f64).collect();
    let correct: Vec<bool> = pred.iter().zip(labels).map(|(p, l)| p == l).collect();
    let m = confusion(labels, &pred, classes);
    let curve = risk_coverage(&conf, &correct);
    let step = (curve.len() / 20).max(1);
    let coarse: Vec<(f64, f64)> = curve
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % step == 0)
        .map(|(_, p)| *p)
        .collect();
    let triage = triage.map(|t| {
        let n = t.len().max(1) as f64;
        let auto: Vec<usize> = (0..t.len()).filter(|&i| t[i] == Triage::Auto).collect();
        TriageReport {
            auto: auto.len() as f64 / n,
            review: t.iter().filter(|x| **x == Triage::Review).count() as f64 / n,
            anomaly: t.iter().filter(|x| **x == Triage::Anomaly).count() as f64 / n,
            auto_accuracy: auto.iter().filter(|&&i| correct[i]).count() as f64
                / auto.len().max(1) as f64,
        }
    });
    ClassifierReport {
        n: labels.len(),
        accuracy: correct.iter().filter(|c| **c).count() as f64 / labels.len().max(1) as f64,
        balanced_accuracy: balanced_accuracy(&m),
        macro_f1: macro_f1(&m),
        ece: expected_calibration_error(&conf, &correct, 15),
        accuracy_at_80_coverage: accuracy_at_coverage(&conf, &correct, 0.8),
        aurc: aurc(&curve),
        risk_coverage: coarse,
        reliability: reliability(&conf, &correct, 15),
        confusion: m,
        mean_evals: evals.map(|e| e.iter().sum::<usize>() as f64 / e.len().max(1) as f64),
        triage,
    }
}

/// Cells per second and mean evaluations of the live classifier on `cells`.
pub fn benchmark(clf: &CellClassifier, cells: &[CellCrop]) -> Result<Throughput> {
    let start = Instant::now();
    let d = diagnose_all(clf, cells, |_| {})?;
    let secs = start.elapsed().as_secs_f64();
    let n = d.len().max(1) as f64;
    let evals = d.iter().map(|x| x.evals).sum::<usize>() as f64 / n;
    let rounds = d.iter().map(|x| x.rounds).sum::<usize>() as f64 / n;
    let cfg = &clf.card.denoiser;
    let head = cfg.head_flops() as f64;
    let trunk = (cfg.flops() - cfg.head_flops()) as f64;
    Ok(Throughput {
        cells_per_second: cells.len() as f64 / secs,
        evals,
        rounds,
        gflop_per_cell: (trunk * rounds + head * evals) / 1e9,
    })
}

/// What [`benchmark`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Cells classified per second.
    pub cells_per_second: f64,
    /// Mean denoiser evaluations (rows) per cell.
    pub evals: f64,
    /// Mean noise draws per cell (passes of a late-conditioned denoiser's shared trunk).
    pub rounds: f64,
    /// Mean GFLOP per cell: the trunk once per round, the class-conditioned head once per
    /// evaluation ([`crate::unet::DenoiserConfig::head_flops`]).
    pub gflop_per_cell: f64,
}

/// A reliability diagram as a small standalone SVG.
pub fn reliability_svg(reports: &[(&str, &ClassifierReport)]) -> String {
    let (w, h, pad) = (360.0, 360.0, 40.0);
    let colours = ["#7b2d8b", "#2a7ab0"];
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">", w + 2.0 * pad, h + 2.0 * pad);
    s += &format!("<rect x=\"{pad}\" y=\"{pad}\" width=\"{w}\" height=\"{h}\" fill=\"#fff\" stroke=\"#333\"/>");
    s += &format!("<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{pad}\" stroke=\"#999\" stroke-dasharray=\"4\"/>", pad + h, pad + w);
    for (k, (name, r)) in reports.iter().enumerate() {
        let pts: Vec<String> = r
            .reliability
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| {
                format!(
                    "{:.1},{:.1}",
                    pad + b.confidence * w,
                    pad + h - b.accuracy * h
                )
            })
            .collect();
        let c = colours[k % colours.len()];
        s += &format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"/>",
            pts.join(" ")
        );
        s += &format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{name} (ECE {:.3})</text>",
            pad + 8.0,
            pad + 16.0 + 14.0 * k as f64,
            r.ece
        );
    }
    s += &format!("<text x=\"{}\" y=\"{}\">confidence</text><text x=\"8\" y=\"{}\" transform=\"rotate(-90 8 {})\">accuracy</text></svg>", pad + w / 2.0 - 30.0, h + 2.0 * pad - 10.0, pad + h / 2.0, pad + h / 2.0);
    s
}
