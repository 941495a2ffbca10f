//! Tests of the classifier as a whole: a fake denoiser run through every path.

use super::*;
use crate::augment::dihedral;
use crate::preprocess::CellCrop;
use crate::schedule::NoiseSchedule;

fn cell(size: usize, v: f32) -> CellCrop {
    CellCrop {
        size,
        pixels: vec![v; 3 * size * size],
    }
}

/// A fake denoiser: class `good` predicts the noise exactly, the others add an error of
/// `gap * class distance` plus round-dependent jitter shared by all classes.
fn run_fake(gap: f32, good: usize, settings: ClassifierSettings) -> CellScores {
    let size = 4;
    let mut run = ClassifierRun::new(vec![cell(size, 0.1)], 8, settings);
    let plan = plan_rounds(run.settings(), size);
    let mut round = 0;
    while let Some(inputs) = run.next_inputs() {
        let n = 3 * size * size;
        let mut out = Vec::new();
        for &c in &inputs.classes {
            let jitter = 0.3 + 0.2 * ((round * 7 % 5) as f32);
            let extra = gap * (c as f32 - good as f32).abs();
            out.extend(plan[round].noise.iter().take(n).map(|e| e + jitter + extra));
        }
        run.absorb(&out);
        round += 1;
    }
    run.into_scores().remove(0)
}

#[test]
fn a_clearly_worse_class_is_dropped_early() {
    let s = run_fake(0.5, 2, ClassifierSettings::default());
    assert_eq!(s.best(), 2);
    assert_eq!(
        s.active.iter().filter(|a| **a).count(),
        1,
        "only the true class survives"
    );
    // Classes far from the truth go right after the first 3 rounds; the neighbours, whose
    // gap is smaller, take a few rounds more. Far fewer than 8 x 12 evaluations in all.
    assert_eq!(
        s.errors[7].iter().flatten().count(),
        3,
        "class 7 is dropped after 3 rounds"
    );
    assert!(s.evals < 8 * 6, "{} evaluations", s.evals);
}

#[test]
fn no_class_rounds_cost_one_evaluation_each_and_leave_the_race_alone() {
    let plain = run_fake(0.5, 2, ClassifierSettings::default());
    let with = run_fake(
        0.5,
        2,
        ClassifierSettings {
            uncond_rounds: 3,
            ..ClassifierSettings::default()
        },
    );
    assert_eq!(with.evals, plain.evals + 3);
    assert_eq!(
        with.errors, plain.errors,
        "the classes' errors are unchanged"
    );
    assert_eq!(with.active, plain.active);
    assert_eq!(with.uncond_errors.len(), 3);
    assert_eq!(plain.conditioning_gain(2), None);
    assert_eq!(
        with.pixel_errors, plain.pixel_errors,
        "the classes' pixel maps are unchanged"
    );
    // The "no class" pixel map holds its own errors: larger than the true class's
    // everywhere (the fake's "no class" row is farther from the noise), absent without
    // "no class" rounds.
    assert!(plain.uncond_pixel_errors.iter().all(|e| *e == 0.0));
    assert!(with
        .uncond_pixel_errors
        .iter()
        .zip(&with.pixel_errors[2])
        .all(|(u, c)| u > c));
    // The fake's "no class" row (index 8) is 6 class distances from the truth: every class
    // helps, the true class most.
    let gain = |c| with.conditioning_gain(c).expect("gain");
    assert!(
        gain(2) < gain(3) && gain(3) < 0.0,
        "{} {}",
        gain(2),
        gain(3)
    );
}

#[test]
fn dihedral_views_turn_the_input_and_turn_the_prediction_back() {
    let size = 4;
    let pixels: Vec<f32> = (0..3 * size * size)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let settings = ClassifierSettings {
        views: true,
        test_strictness: f32::INFINITY,
        ..ClassifierSettings::default()
    };
    let plan = plan_rounds(&settings, size);
    assert_eq!(
        plan.iter().map(|r| r.view).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3]
    );
    let cell = CellCrop { size, pixels };
    let mut run = ClassifierRun::new(vec![cell.clone()], 8, settings);
    let schedule = NoiseSchedule::ddpm();
    for round in &plan {
        let inputs = run.next_inputs().expect("a round");
        let ab = schedule.alpha_bar(round.t);
        let noised: Vec<f32> = cell
            .pixels
            .iter()
            .zip(&round.noise)
            .map(|(x, e)| ab.sqrt() as f32 * x + (1.0 - ab).sqrt() as f32 * e)
            .collect();
        let n = noised.len();
        let seen = dihedral(&noised, size, round.view);
        assert!(inputs.x_t[..n]
            .iter()
            .zip(&seen)
            .all(|(a, b)| (a - b).abs() < 1e-5));
        // Class 5 predicts the noise exactly, in the frame it was shown; the rest are off.
        let truth = dihedral(&round.noise, size, round.view);
        let out: Vec<f32> = inputs
            .classes
            .iter()
            .flat_map(|&c| truth.iter().map(move |e| if c == 5 { *e } else { e + 0.5 }))
            .collect();
        run.absorb(&out);
    }
    let s = run.into_scores().remove(0);
    assert_eq!(s.best(), 5);
    assert!(s.errors[5].iter().flatten().all(|e| *e < 1e-10));
    assert!(s.pixel_errors[5].iter().all(|e| *e < 1e-10));
}

#[test]
fn a_round_holds_each_noised_image_once_and_maps_its_rows_to_it() {
    let size = 4;
    let n = 3 * size * size;
    let cells = vec![cell(size, 0.1), cell(size, -0.4)];
    let settings = ClassifierSettings {
        uncond_rounds: 1,
        ..ClassifierSettings::default()
    };
    let mut run = ClassifierRun::new(cells, 8, settings);
    let inputs = run.next_inputs().expect("a first round");
    assert_eq!(inputs.x_t.len(), 2 * n, "two cells, two images");
    assert_eq!(inputs.t.len(), 2);
    // Eight classes and the "no class" row for each cell.
    assert_eq!(inputs.rows(), 18);
    assert_eq!(inputs.source[..9], [0; 9]);
    assert_eq!(inputs.source[9..], [1; 9]);
    assert_eq!(inputs.classes[8], 8, "the ninth row is the no-class token");
    assert!(inputs.x_t[..n] != inputs.x_t[n..], "the cells' own images");
}

#[test]
fn an_excluded_class_gets_no_probability() {
    // Excluded classes are never evaluated. A gap of 0 for them would tie them with the
    // best class (and the first in class order would be "predicted").
    let settings = ClassifierSettings {
        excluded: vec![2],
        ..ClassifierSettings::default()
    };
    let s = run_fake(0.5, 4, settings);
    let gaps = s.gaps();
    assert!(
        gaps[2].is_infinite(),
        "gap of the excluded class: {}",
        gaps[2]
    );
    let p = crate::diagnosis::probabilities(&gaps, 0.05);
    assert_eq!(p[2], 0.0);
    let top = (0..8)
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .expect("classes");
    assert_eq!(top, 4);
}

#[test]
fn gaps_use_score_weights_survivor_scale_and_the_eliminating_test() {
    // Three classes, four rounds. Score weights contrast rounds 0-1 against 2-3; test
    // weights are all 1. Class 2 was eliminated after round 1 (two rounds).
    let mut s = CellScores::new(3, 0);
    s.errors = vec![
        vec![Some(1.0), Some(1.0), Some(1.0), Some(1.0)],
        vec![Some(1.2), Some(1.2), Some(1.1), Some(1.1)],
        vec![Some(1.5), Some(1.5), None, None],
    ];
    s.round_weights = vec![1.0; 4];
    s.round_score_weights = vec![1.0, 1.0, -0.5, -0.5];
    s.active = vec![true, true, false];
    assert_eq!(s.best(), 0);
    // Class 1 under the score: (0.2 + 0.2 - 0.05 - 0.05) / 4 rounds / mean |w| 0.75.
    let g = s.gaps();
    assert!((g[1] - 0.1).abs() < 1e-6, "{g:?}");
    // Class 2: its score gap over its two rounds (0.5 / 0.75 = 0.667) against the test's
    // 0.5: the larger.
    assert!((g[2] - 0.5 / 0.75).abs() < 1e-5, "{g:?}");
    s.round_score_weights = vec![1.0, -1.0, 1.0, 1.0];
    // Now its score gap over rounds 0-1 is 0: the test's gap (0.5) stands.
    assert!((s.gaps()[2] - 0.5).abs() < 1e-6, "{:?}", s.gaps());
    // A survivor's gap is scaled; an eliminated class's is not.
    let before = s.gaps();
    s.survivor_gap_scale = 3.0;
    let after = s.gaps();
    assert!((after[1] - 3.0 * before[1]).abs() < 1e-6 && after[2] == before[2]);
    assert_eq!(after[0], 0.0);
}

#[test]
fn identical_classes_are_not_dropped() {
    let s = run_fake(0.0, 0, ClassifierSettings::default());
    assert_eq!(
        s.active.iter().filter(|a| **a).count(),
        8,
        "no class is worse than another"
    );
    assert_eq!(s.evals, 8 * 12);
}

/// A live run of the fake under `settings`, and the replay of the fake's full run (no
/// elimination, no screen, the same "no class" rounds) under the same settings.
fn live_and_replayed(settings: ClassifierSettings) -> (CellScores, CellScores) {
    let full = run_fake(
        0.5,
        2,
        ClassifierSettings {
            test_strictness: f32::INFINITY,
            screen: Vec::new(),
            ..settings.clone()
        },
    );
    assert_eq!(
        full.evals,
        96 + settings.uncond_rounds,
        "no elimination in a full run"
    );
    let strata: Vec<usize> = plan_rounds(&settings, 4)
        .iter()
        .map(|r| r.stratum)
        .collect();
    let raw: Vec<Vec<f32>> = full
        .errors
        .iter()
        .map(|e| e.iter().map(|v| v.expect("full")).collect())
        .collect();
    let replayed = replay(&raw, &full.uncond_errors, &strata, &settings);
    (run_fake(0.5, 2, settings), replayed)
}

#[test]
fn replay_of_a_full_run_matches_a_live_run() {
    let (live, replayed) = live_and_replayed(ClassifierSettings::default());
    assert_eq!(replayed.evals, live.evals);
    assert_eq!(replayed.active, live.active);
    assert_eq!(replayed.gaps(), live.gaps());
}

#[test]
fn replay_with_no_class_rounds_matches_a_live_run() {
    let (live, replayed) = live_and_replayed(ClassifierSettings {
        uncond_rounds: 3,
        ..ClassifierSettings::default()
    });
    assert_eq!(replayed.evals, live.evals);
    assert_eq!(replayed.uncond_errors, live.uncond_errors);
    assert_eq!(replayed.conditioning_gain(2), live.conditioning_gain(2));
}

/// Default settings with a screen of `limit` after rounds 1 and 2 and `uncond` "no class"
/// rounds.
fn screened(limit: f32, uncond: usize) -> ClassifierSettings {
    ClassifierSettings {
        screen: vec![Some(limit), Some(limit)],
        screen_miss: 0.01,
        uncond_rounds: uncond,
        ..ClassifierSettings::default()
    }
}

#[test]
fn a_screen_drops_far_classes_after_one_round_and_saves_evaluations() {
    // The fake's first round has jitter 0.3, so class c's scaled error is
    // (0.3 + 0.5 |c - 2|)^2: gaps to class 2 of 0.55, 1.6, 3.15, 5.2 and 7.75 at distances 1
    // to 5. A screen of 2.5 drops the classes 3 or more away after one round; after two
    // (jitter 0.7 in the second) the mean gaps at distances 1 and 2 are 0.75 and 2.0.
    let plain = run_fake(0.5, 2, ClassifierSettings::default());
    let s = run_fake(0.5, 2, screened(2.5, 0));
    assert_eq!(s.best(), 2);
    for c in [5, 6, 7] {
        assert_eq!(s.errors[c].iter().flatten().count(), 1, "class {c}");
        assert!(s.screened[c] && !s.active[c], "class {c}");
    }
    for c in [0, 1, 3, 4] {
        assert!(!s.screened[c], "class {c} is within the screen");
        assert!(s.errors[c].iter().flatten().count() >= 3, "class {c}");
    }
    assert!(s.evals < plain.evals, "{} vs {}", s.evals, plain.evals);
    assert_eq!(
        plain.screened,
        vec![false; 8],
        "no screen without thresholds"
    );
    // A screened class keeps a gap at least its screen, so a small probability.
    let gaps = s.gaps();
    assert!(gaps[5] > 2.5 && gaps[7] > gaps[5], "{gaps:?}");
    // Its pixel map holds the one round it was evaluated in.
    assert_eq!(s.pixel_rounds[7], 1);
    assert_eq!(s.pixel_rounds[2], 3);
}

#[test]
fn identical_classes_are_never_screened() {
    // Every class denoises equally well: gaps of 0, not above even a zero screen.
    let s = run_fake(0.0, 2, screened(0.0, 0));
    assert!(s.screened.iter().all(|x| !x));
    assert!(s.errors.iter().all(|e| e.iter().flatten().count() >= 3));
}

#[test]
fn no_screen_inside_the_no_class_rounds() {
    // The gain profile needs every class in the "no class" rounds: with 3 of them (all of
    // `min_rounds`) no screen applies; with 2, only the one after round 2.
    let plain = run_fake(0.5, 2, screened(2.0, 3));
    assert!(plain.screened.iter().all(|x| !x));
    assert!(plain.errors.iter().all(|e| e.iter().flatten().count() >= 3));
    let two = run_fake(0.5, 2, screened(2.0, 2));
    assert_eq!(two.errors[7].iter().flatten().count(), 2);
    assert!(two.screened[7]);
    assert_eq!(screen_after(1, &screened(2.0, 2)), None);
    assert_eq!(screen_after(2, &screened(2.0, 2)), Some(2.0));
    assert_eq!(
        screen_after(3, &screened(2.0, 0)),
        None,
        "the paired test's rounds"
    );
}

#[test]
fn a_screen_can_keep_the_runner_up() {
    // A zero screen after round 1 drops every class but the leader, class 2; kept
    // two deep, it keeps the closest rival too (classes 1 and 3 tie: the lower index).
    let alone = run_fake(0.5, 2, screened(0.0, 0));
    let two = run_fake(
        0.5,
        2,
        ClassifierSettings {
            screen_keep: 2,
            ..screened(0.0, 0)
        },
    );
    assert_eq!((alone.best(), two.best()), (2, 2));
    assert!(alone.screened[1] && alone.screened[3]);
    assert!(!two.screened[1] && !two.screened[2], "{:?}", two.screened);
    assert!(two.screened[3] && two.screened[7]);
    assert!(
        two.errors[1].iter().flatten().count() >= 3,
        "the paired test decides"
    );
    assert!(two.evals > alone.evals);
    // Ties go to the lower index; inactive (infinite) classes are never kept.
    let inf = f32::INFINITY;
    assert_eq!(
        screen_kept(&[0.4, 0.0, 0.4, inf], 2),
        vec![true, true, false, false]
    );
    assert_eq!(screen_kept(&[0.4, 0.0, inf], 0), vec![false, true, false]);
    assert_eq!(screen_kept(&[0.0, inf], 3), vec![true, false]);
}

#[test]
fn no_class_rounds_are_added_only_to_settings_without_them() {
    // A card fitted with 2 "no class" rounds keeps them, and with them the screen after
    // round 2 (3 rounds would leave that screen no round to act in).
    let fitted = screened(2.0, 2).or_uncond_rounds(3);
    assert_eq!(fitted.uncond_rounds, 2);
    assert_eq!(screen_after(2, &fitted), Some(2.0));
    let run = run_fake(0.5, 2, screened(2.0, 2).or_uncond_rounds(3));
    assert_eq!(run.uncond_errors.len(), 2);
    // One without them (from before the conditioning gain) gets the rounds asked for.
    let old = ClassifierSettings::default().or_uncond_rounds(3);
    assert_eq!(old.uncond_rounds, 3);
    assert_eq!(run_fake(0.5, 2, old).uncond_errors.len(), 3);
}

#[test]
fn replay_with_a_screen_matches_a_live_run() {
    let (live, replayed) = live_and_replayed(screened(2.0, 1));
    assert!(live.screened.iter().any(|x| *x));
    assert_eq!(replayed.evals, live.evals);
    assert_eq!(replayed.active, live.active);
    assert_eq!(replayed.screened, live.screened);
    assert_eq!(replayed.gaps(), live.gaps());
}

#[test]
fn paired_test_needs_consistent_evidence() {
    assert!(clearly_worse(&[0.5, 0.52, 0.49, 0.51], 1.0));
    assert!(!clearly_worse(&[0.5, -0.4, 0.3, -0.2], 1.0));
    assert!(!clearly_worse(&[0.5], 1.0), "one pair is never enough");
}

#[test]
fn rounds_are_seeded_and_stratified() {
    let s = ClassifierSettings::default();
    let a = plan_rounds(&s, 4);
    let b = plan_rounds(&s, 4);
    assert_eq!(
        a.iter().map(|r| r.t).collect::<Vec<_>>(),
        b.iter().map(|r| r.t).collect::<Vec<_>>()
    );
    assert_eq!(a[0].noise, b[0].noise);
    let mut strata: Vec<usize> = a.iter().map(|r| r.stratum).collect();
    strata.sort();
    assert_eq!(strata, (0..12).collect::<Vec<_>>());
    for r in &a {
        let width = (s.t_range.1 - s.t_range.0) as f64 / 12.0;
        let lo = s.t_range.0 as f64 + r.stratum as f64 * width;
        assert!(r.t as f64 >= lo.floor() && (r.t as f64) < lo + width + 1.0);
    }
    let other = plan_rounds(&ClassifierSettings { seed: 1, ..s }, 4);
    assert_ne!(a[0].noise, other[0].noise);
}

#[test]
fn pixel_weights_favour_the_centre_and_average_one() {
    let w = pixel_weights(16, true);
    let mean: f32 = w.iter().sum::<f32>() / w.len() as f32;
    assert!((mean - 1.0).abs() < 1e-4);
    assert!(w[8 * 16 + 8] > w[0]);
}
