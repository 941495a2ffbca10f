//! Tests of the calibration: each fit on synthetic evaluations with a known answer.

use super::*;
use crate::classify::screen_kept;
use crate::diagnosis::AnomalyKind;
use crate::unet::DenoiserConfig;

/// Full evaluations of `cells` synthetic cells over `classes` classes and `rounds` rounds:
/// cell `i` has class `label(i)` and denoising error `error(i, class, round, label)`.
fn synthetic_evals(
    cells: usize,
    classes: usize,
    rounds: usize,
    label: impl Fn(usize) -> usize,
    error: impl Fn(usize, usize, usize, usize) -> f32,
) -> Vec<FullEval> {
    (0..cells)
        .map(|i| {
            let label = label(i);
            let raw = (0..classes)
                .map(|c| (0..rounds).map(|r| error(i, c, r, label)).collect())
                .collect();
            FullEval {
                raw,
                label,
                uncond: Vec::new(),
            }
        })
        .collect()
}

/// Settings that run all `rounds` rounds with equal weights: nothing fitted yet.
fn every_round_equal(rounds: usize) -> ClassifierSettings {
    ClassifierSettings {
        max_rounds: rounds,
        min_rounds: rounds,
        stratum_weights: vec![1.0; rounds],
        stratum_scale: vec![1.0; rounds],
        ..ClassifierSettings::default()
    }
}

#[test]
fn temperature_recovers_a_known_scale() {
    // Labels drawn so that p(label) = softmax(-gap / 0.5): the fitted temperature is near 0.5.
    let mut gaps = Vec::new();
    let mut labels = Vec::new();
    for i in 0..2000 {
        let g = vec![0.0f32, 0.4];
        let p1 = probabilities(&g, 0.5)[1];
        let u = ((i * 7919) % 2000) as f32 / 2000.0;
        labels.push(if u < p1 { 1 } else { 0 });
        gaps.push(g);
    }
    let t = fit_temperature(&gaps, &labels);
    assert!((t - 0.5).abs() < 0.05, "fitted {t}");
}

#[test]
fn weights_cancel_a_nuisance_shared_by_two_timesteps() {
    // Three strata. Each class has a per-cell nuisance error u_c (say, how its condition
    // suits this image's stain) that shows in strata 0 and 2 alike; stratum 0 also carries
    // the signal (the true class 0.2 lower), stratum 1 is noise. Equal weights drown the
    // signal in the nuisance; the fit weights stratum 2 against stratum 0 and ignores 1.
    let strata: Vec<usize> = (0..3).collect();
    let hash = |i: usize, j: usize| ((i * 7919 + j * 104729) % 1000) as f32 / 1000.0;
    let evals = synthetic_evals(
        600,
        3,
        3,
        |i| i % 3,
        |i, c, r, label| {
            let u = hash(i, c);
            let signal = if c == label { 0.2 } else { 0.0 };
            [1.0 + u - signal, 1.0 + 0.5 * hash(i, c + 10), 1.0 + u][r]
        },
    );
    let mut settings = every_round_equal(3);
    let accuracy = |s: &ClassifierSettings| {
        evals
            .iter()
            .filter(|e| replay(&e.raw, &e.uncond, &strata, s).best() == e.label)
            .count() as f64
            / evals.len() as f64
    };
    let equal = accuracy(&settings);
    let (w, b) = fit_weights_and_bias(&evals, &strata, &settings);
    assert!((w[0] - 1.0).abs() < 1e-6, "{w:?}");
    assert!(
        (w[2] + 1.0).abs() < 0.1,
        "stratum 2 cancels the nuisance: {w:?}"
    );
    assert!(w[1].abs() < 0.1, "stratum 1 is noise: {w:?}");
    settings.score_weights = w;
    settings.class_bias = b;
    let fitted = accuracy(&settings);
    assert!(
        equal < 0.8 && fitted > 0.99,
        "equal weights {equal}, fitted {fitted}"
    );
}

#[test]
fn a_balanced_fit_trades_common_class_accuracy_for_rare_class_recall() {
    // 900 cells of class 0, 100 of class 1; the true class denoises 0.1 better on average,
    // with Gaussian noise of that size (sd 0.1) per round, so the classes overlap and the
    // prior decides the close cells.
    let strata: Vec<usize> = (0..3).collect();
    let mut rng = crate::train::step_rng(5, 0);
    let noise = crate::train::normal_vec(&mut rng, 1000 * 2 * 3);
    let evals = synthetic_evals(
        1000,
        2,
        3,
        |i| usize::from(i % 10 == 0),
        |i, c, r, label| {
            let n = noise[(i * 2 + c) * 3 + r] * 0.1;
            (if c == label { 1.0 } else { 1.1 }) + n
        },
    );
    let base = every_round_equal(3);
    // Recall of each class under the settings fitted with or without balancing.
    let recalls = |balanced_fit: bool| {
        let mut s = ClassifierSettings {
            balanced_fit,
            ..base.clone()
        };
        let (w, b) = fit_weights_and_bias(&evals, &strata, &s);
        s.score_weights = w;
        s.class_bias = b;
        let mut right = [0f64; 2];
        for e in &evals {
            if replay(&e.raw, &e.uncond, &strata, &s).best() == e.label {
                right[e.label] += 1.0;
            }
        }
        [right[0] / 900.0, right[1] / 100.0]
    };
    let plain = recalls(false);
    let balanced = recalls(true);
    eprintln!("recalls [common, rare]: plain {plain:.3?}, balanced {balanced:.3?}");
    assert!(
        balanced[1] > plain[1] + 0.15 && balanced[0] < plain[0],
        "rare-class recall {:.2} -> {:.2}, common {:.2} -> {:.2}",
        plain[1],
        balanced[1],
        plain[0],
        balanced[0]
    );
    let mean = |r: [f64; 2]| (r[0] + r[1]) / 2.0;
    assert!(
        mean(balanced) > mean(plain),
        "balanced accuracy {:.3} -> {:.3}",
        mean(plain),
        mean(balanced)
    );
}

#[test]
fn class_bias_recovers_a_known_offset() {
    // Class 1's condition denoises everything 0.3 better: without the bias it wins every
    // cell; the fitted bias (mean zero) separates the two by about that offset.
    let strata: Vec<usize> = (0..4).collect();
    let noise = |i: usize, r: usize| ((i * 31 + r * 17) % 13) as f32 / 13.0 * 0.2;
    let evals = synthetic_evals(
        400,
        2,
        4,
        |i| i % 2,
        |i, c, r, label| {
            let base = if c == label { 1.0 } else { 1.2 };
            base - if c == 1 { 0.3 } else { 0.0 } + noise(i, r + 4 * c)
        },
    );
    let mut settings = every_round_equal(4);
    let (w, b) = fit_weights_and_bias(&evals, &strata, &settings);
    assert!((b[0] + b[1]).abs() < 1e-5, "mean zero: {b:?}");
    assert!((b[0] - b[1] - 0.3).abs() < 0.1, "offset: {b:?}");
    assert!(w.iter().all(|w| *w > 0.0), "every round helps: {w:?}");
    settings.score_weights = w;
    settings.class_bias = b;
    let correct = evals
        .iter()
        .filter(|e| replay(&e.raw, &e.uncond, &strata, &settings).best() == e.label)
        .count();
    assert!(correct >= 380, "{correct}/400 correct with the bias");
    let unbiased = ClassifierSettings {
        class_bias: Vec::new(),
        ..settings
    };
    let correct_before = evals
        .iter()
        .filter(|e| replay(&e.raw, &e.uncond, &strata, &unbiased).best() == e.label)
        .count();
    assert!(
        correct_before <= 220,
        "{correct_before}/400 correct without it"
    );
}

#[test]
fn with_no_class_rounds_the_anomaly_score_is_the_gain_profile() {
    // Two classes, 12 rounds; the true class's error is 0.7 of the "no class" error and the
    // other class's 0.9, whose level varies from cell to cell (some images are harder to
    // denoise than others).
    let strata: Vec<usize> = (0..12).collect();
    let cell = |i: usize, label: usize, own: f32, other: f32, level: f32| {
        let jitter = |r: usize| 1.0 + ((i * 13 + r * 7) % 11) as f32 / 200.0;
        let raw = (0..2)
            .map(|c| {
                let f = if c == label { own } else { other };
                (0..12).map(|r| level * f * jitter(r)).collect()
            })
            .collect();
        FullEval {
            raw,
            label,
            uncond: (0..3).map(|r| level * jitter(r + 20)).collect(),
        }
    };
    let level = |i: usize| 0.5 + (i * 37 % 19) as f32 / 10.0;
    let evals: Vec<FullEval> = (0..200)
        .map(|i| cell(i, i % 2, 0.7, 0.9, level(i)))
        .collect();
    let mut card = ModelCard::uncalibrated(DenoiserConfig::new().with_num_classes(2));
    card.classes.truncate(2);
    card.classifier.uncond_rounds = 3;
    let card = calibrate(card, &evals, &strata, 0.99, 0.99).card;
    let a = &card.anomaly;
    assert_eq!(a.kind, AnomalyKind::GainProfile);
    assert_eq!(a.profile_classes, vec![0, 1]);
    assert_eq!(a.profile.len(), 2);
    // Profile of class 0: gains ln 0.7 (own) and ln 0.9 (other), then the log level.
    let m = &a.profile[0].mean;
    assert!(
        (m[0] - 0.7f32.ln()).abs() < 0.03 && (m[1] - 0.9f32.ln()).abs() < 0.03,
        "{m:?}"
    );
    assert!(card.check().is_ok());
    let score = |e: &FullEval| {
        let s = replay(&e.raw, &e.uncond, &strata, &card.classifier);
        (s.best(), anomaly_score(&s, s.best(), a))
    };
    // A new typical cell stays under the threshold, whatever its level.
    let (best, typical) = score(&cell(1000, 0, 0.7, 0.9, 2.2));
    assert_eq!(best, 0);
    assert!(typical < card.triage.anomaly_threshold, "typical {typical}");
    // A cell that class 0 helps as much as ever, but class 1 just as much: its own gain is
    // typical (the conditioning-gain score would pass it), its profile is not.
    let (best, odd) = score(&cell(1001, 0, 0.7, 0.72, 1.0));
    assert_eq!(best, 0);
    assert!(odd > card.triage.anomaly_threshold + 3.0, "odd {odd}");
    // "No class" rounds after the first `min_rounds` (not every class is still evaluated
    // there): the predicted class's conditioning gain, free of the error level.
    let mut late = ModelCard::uncalibrated(DenoiserConfig::new().with_num_classes(2));
    late.classes.truncate(2);
    late.classifier.uncond_rounds = 3;
    late.classifier.min_rounds = 2;
    let late = calibrate(late, &evals, &strata, 0.99, 0.99).card;
    assert_eq!(late.anomaly.kind, AnomalyKind::ConditioningGain);
    for c in 0..2 {
        let (m, sd) = (late.anomaly.mean[c], late.anomaly.std[c]);
        assert!((m - 0.7f32.ln()).abs() < 0.05, "class {c}: mean gain {m}");
        assert!(sd < 0.05, "class {c}: spread {sd}, free of the error level");
    }
    assert!(late.check().is_ok());
    // Without those rounds: the older typical-error statistics.
    let mut plain = ModelCard::uncalibrated(DenoiserConfig::new().with_num_classes(2));
    plain.classes.truncate(2);
    let plain = calibrate(plain, &evals, &strata, 0.99, 0.99).card;
    assert_eq!(plain.anomaly.kind, AnomalyKind::TypicalError);
}

#[test]
fn a_gaussian_fit_recovers_mean_and_precision() {
    // Two independent dimensions with standard deviations 2 and 0.5, and a copy of the first
    // (collinear): shrinkage keeps the covariance invertible.
    let x: Vec<Vec<f32>> = (0..400)
        .map(|i| {
            let a = if i % 2 == 0 { 2.0 } else { -2.0 };
            let b = if (i / 2) % 2 == 0 { 0.5 } else { -0.5 };
            vec![1.0 + a, b, 1.0 + a]
        })
        .collect();
    let g = fit_gaussian(&x, 3, 0.1);
    assert!((g.mean[0] - 1.0).abs() < 1e-5 && g.mean[1].abs() < 1e-5);
    assert!(g.precision.iter().all(|v| v.is_finite()));
    // One standard deviation along the second dimension is distance 1.
    let d = g.distance(&[1.0, 0.5, 1.0]).expect("3-d");
    assert!((d - 1.0).abs() < 1e-3, "distance {d}");
    // Breaking the copy is far more unusual than a large but consistent move.
    let broken = g.distance(&[3.0, 0.0, -1.0]).expect("3-d");
    let consistent = g.distance(&[3.0, 0.0, 3.0]).expect("3-d");
    assert!(broken > 3.0 * consistent, "{broken} vs {consistent}");
    assert!(g.distance(&[1.0, 0.0]).is_none());
}

#[test]
fn auto_threshold_reaches_the_target() {
    let conf = [0.99, 0.98, 0.97, 0.9, 0.8, 0.7];
    let correct = [true, true, true, false, true, false];
    assert_eq!(fit_auto_threshold(&conf, &correct, 1.0, 0.0), 0.97);
    assert_eq!(fit_auto_threshold(&conf, &correct, 0.8, 0.0), 0.8);
    assert_eq!(fit_auto_threshold(&[0.5], &[false], 0.9, 0.0), 1.0);
    // With a confidence bound, three right answers do not prove 100 % or even 80 %.
    assert_eq!(fit_auto_threshold(&conf, &correct, 0.8, 1.0), 1.0);
}

#[test]
fn auto_threshold_with_a_bound_needs_enough_evidence() {
    // 300 right, then one wrong every 50 cells (98 %): a 99 % target is met by the first
    // 300 plain, but the bound asks for more than 300 perfect cells at z = 1:
    // 1 / (1 + 1/n) >= 0.99 needs n >= 99, so the 300 pass; with errors mixed in it stops.
    let n = 1000;
    let conf: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 / n as f32).collect();
    let correct: Vec<bool> = (0..n).map(|i| i < 300 || i % 50 != 0).collect();
    let plain = fit_auto_threshold(&conf, &correct, 0.99, 0.0);
    let bounded = fit_auto_threshold(&conf, &correct, 0.99, AUTO_BOUND_Z);
    assert!(
        bounded >= plain,
        "the bound is never looser: {bounded} < {plain}"
    );
    let accepted = |t: f32| conf.iter().filter(|c| **c >= t).count();
    assert!(accepted(bounded) >= 300, "{}", accepted(bounded));
    let (k, m) = (
        correct[..accepted(bounded)].iter().filter(|c| **c).count(),
        accepted(bounded),
    );
    assert!(wilson_lower(k, m, AUTO_BOUND_Z) >= 0.99);
    assert!((wilson_lower(99, 100, 0.0) - 0.99).abs() < 1e-12);
    assert!((wilson_lower(100, 100, 1.0) - 100.0 / 101.0).abs() < 1e-12);
}

#[test]
fn the_anomaly_threshold_holds_on_new_cells() {
    // Eight classes, 40 val cells each: a 9-dimensional gain profile per class, fitted on
    // few cells, sits closer to its own cells than to new ones. The threshold is a quantile
    // of leave-one-out scores, so new typical cells exceed it about as often as intended;
    // the same quantile of in-sample scores would flag far more of them.
    let k = 8;
    let strata: Vec<usize> = (0..12).collect();
    // Each cell's log gains and level: seeded normal noise, sd 0.05.
    let cell = |i: usize| {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
        let mut noise = || 0.05 * rng.sample::<f32, _>(rand_distr::StandardNormal);
        let label = i % k;
        let raw = (0..k)
            .map(|c| {
                let f: f32 = if c == label { 0.7 } else { 0.9 };
                let e = (f.ln() + noise()).exp();
                (0..12).map(|_| e * (1.0 + 0.1 * noise())).collect()
            })
            .collect();
        let level = noise().exp();
        FullEval {
            raw,
            label,
            uncond: (0..3).map(|_| level * (1.0 + 0.1 * noise())).collect(),
        }
    };
    let evals: Vec<FullEval> = (0..320).map(cell).collect();
    let mut card = ModelCard::uncalibrated(DenoiserConfig::new().with_num_classes(k));
    card.classifier.uncond_rounds = 3;
    let fit = calibrate(card, &evals, &strata, 0.99, 0.9);
    let card = &fit.card;
    assert_eq!(card.anomaly.kind, AnomalyKind::GainProfile);
    assert_eq!(fit.anomaly.len(), evals.len());
    let threshold = card.triage.anomaly_threshold;
    let flagged = |t: f32| {
        let n = 4000;
        (0..n)
            .filter(|i| {
                let e = cell(100_000 + i);
                let s = replay(&e.raw, &e.uncond, &strata, &card.classifier);
                anomaly_score(&s, s.best(), &card.anomaly) > t
            })
            .count() as f64
            / n as f64
    };
    let new = flagged(threshold);
    assert!(
        (0.06..=0.14).contains(&new),
        "{new} of new cells over the threshold, 0.1 intended"
    );
    let mut in_sample: Vec<f32> = fit
        .held_out
        .iter()
        .map(|s| anomaly_score(s, s.best(), &card.anomaly))
        .collect();
    in_sample.sort_by(|a, b| a.total_cmp(b));
    let naive = flagged(in_sample[(0.9 * in_sample.len() as f32) as usize]);
    assert!(
        naive > new + 0.1,
        "in-sample threshold flags {naive}, cross-fitted {new}"
    );
}
#[test]
fn a_fitted_screen_costs_about_its_miss_rate_and_saves_evaluations() {
    // 4 classes, 6 rounds, the paired test from round 3: class c's error is 1 + 0.3 x its
    // distance from the true class, plus Gaussian noise (sd 0.3) per class and round.
    let rounds = 6;
    let strata: Vec<usize> = (0..rounds).collect();
    let mut rng = crate::train::step_rng(11, 0);
    let noise = crate::train::normal_vec(&mut rng, 2000 * 4 * rounds);
    let evals = synthetic_evals(
        2000,
        4,
        rounds,
        |i| i % 4,
        |i, c, r, label| {
            let d = (c as f32 - label as f32).abs();
            1.0 + 0.3 * d + 0.3 * noise[(i * 4 + c) * rounds + r]
        },
    );
    let base = ClassifierSettings {
        min_rounds: 3,
        screen_miss: 0.01,
        ..every_round_equal(rounds)
    };
    let screen = fit_screen(&base, &evals, &strata);
    assert_eq!(
        screen.len(),
        2,
        "one screen per round before the paired test"
    );
    let (t1, t2) = (
        screen[0].expect("after round 1"),
        screen[1].expect("after 2"),
    );
    assert!(t1 > 0.0 && t2 > 0.0, "{screen:?}");
    // Each threshold leaves out about 1 % of the true classes of the cells classified right.
    let right: Vec<&FullEval> = evals
        .iter()
        .filter(|e| replay(&e.raw, &e.uncond, &strata, &base).best() == e.label)
        .collect();
    for (j, t) in [(1, t1), (2, t2)] {
        let over = right
            .iter()
            .filter(|e| replay(&e.raw, &e.uncond, &strata[..j], &base).screen_gaps()[e.label] > t)
            .count() as f64
            / right.len() as f64;
        assert!(over <= 0.01, "after round {j}: {over}");
        assert!(over > 0.002, "the quantile, not the maximum: {over}");
    }
    let run = |s: &ClassifierSettings| {
        let scores: Vec<CellScores> = evals
            .iter()
            .map(|e| replay(&e.raw, &e.uncond, &strata, s))
            .collect();
        let evals_per_cell =
            scores.iter().map(|s| s.evals).sum::<usize>() as f64 / scores.len() as f64;
        (accuracy(&scores, &evals), evals_per_cell)
    };
    let with = ClassifierSettings {
        screen: screen.clone(),
        ..base.clone()
    };
    let ((acc0, ev0), (acc1, ev1)) = (run(&base), run(&with));
    assert!(acc0 - acc1 <= 0.02, "accuracy {acc0} -> {acc1}");
    assert!(ev1 < 0.85 * ev0, "evaluations {ev0} -> {ev1}");
    // Kept two deep, a true class in second place costs nothing: lower thresholds for
    // the same miss rate, counted over the true classes the screen would drop.
    let keep2 = ClassifierSettings {
        screen_keep: 2,
        ..base.clone()
    };
    let screen2 = fit_screen(&keep2, &evals, &strata);
    for (j, t) in [(1, t1), (2, t2)] {
        let t_kept = screen2[j - 1].expect("a screen");
        assert!(t_kept < t, "after round {j}: {t_kept} vs {t}");
        let over = right
            .iter()
            .filter(|e| {
                let gaps = replay(&e.raw, &e.uncond, &strata[..j], &base).screen_gaps();
                !screen_kept(&gaps, 2)[e.label] && gaps[e.label] > t_kept
            })
            .count() as f64
            / right.len() as f64;
        assert!(over <= 0.01 && over > 0.002, "after round {j}: {over}");
    }
    // Inside the "no class" rounds there is no screen; no miss rate, no screen at all.
    let two = fit_screen(
        &ClassifierSettings {
            uncond_rounds: 2,
            ..base.clone()
        },
        &evals,
        &strata,
    );
    assert!(two[0].is_none() && two[1].is_some(), "{two:?}");
    let none = fit_settings(
        &ClassifierSettings {
            screen_miss: 0.0,
            ..base.clone()
        },
        &evals,
        &strata,
    );
    assert!(none.screen.is_empty());
    assert!(!fit_settings(&base, &evals, &strata).screen.is_empty());
}
