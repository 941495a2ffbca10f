//! `tune`: the classifier's settings against one another on val.

use super::calibrate::evaluate_val;
use super::{err, CmdResult, SplitSource};
use burn::prelude::*;
use model_core::calibrate::{accuracy, FullEval};
use model_core::classify::ClassifierSettings;
use model_core::evaluate::plan_strata;
use model_core::weights::{ModelFiles, MODEL_STEM};
use std::path::Path;

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
