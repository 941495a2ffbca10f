//! Tests of training: batches, losses, the teacher, starting from weights, resume.

use super::init::source_architecture;
use super::loss::{ce_targets, one_hot};
use super::*;
use crate::checkpoint::load_weights_file;
use crate::diagnosis::ModelCard;
use crate::unet::{condition, DenoiserConfig};
use crate::weights::half_precision;
use burn::module::Module;
use std::path::PathBuf;

fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// A tiny model, four 16-px cells and the model's weights written to a file (f16 when
/// `half`) in a fresh temp folder named for the test.
fn tiny_setup(name: &str, half: bool) -> (PathBuf, DenoiserConfig, Denoiser, CellSet, PathBuf) {
    let device = Device::flex();
    let cfg = DenoiserConfig::new()
        .with_image_size(16)
        .with_channels(vec![8, 16]);
    let source = cfg.init(&device);
    let full = source.clone().into_record().into_bytes().expect("record");
    let bytes = if half {
        half_precision(&full, &ModelCard::uncalibrated(cfg.clone())).expect("f16")
    } else {
        full.to_vec()
    };
    let dir = std::env::temp_dir().join(format!("cytolens-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("weights.bpk");
    std::fs::write(&file, bytes).expect("write weights");
    let data = CellSet::tiny();
    (dir, cfg, source, data, file)
}

/// Blank 4x4 cells, one per label.
fn blank_cells(labels: Vec<usize>) -> CellSet {
    let n = labels.len();
    CellSet {
        size: 4,
        pixels: vec![0.0; n * 3 * 4 * 4],
        labels,
        paths: vec![String::new(); n],
    }
}

/// The smallest and largest of `ts` (not empty).
fn span(ts: &[usize]) -> (usize, usize) {
    let lo = ts.iter().min().copied().expect("rows");
    let hi = ts.iter().max().copied().expect("rows");
    (lo, hi)
}

#[test]
fn balanced_draws_give_a_rare_class_its_share_of_the_discriminative_images() {
    // 90 images of class 0, 10 of class 2, none of class 1 (present in `classes`).
    let data = blank_cells((0..100).map(|i| if i < 90 { 0 } else { 2 }).collect());
    let classes = [0, 1, 2];
    let opts = TrainOptions {
        batch: 0,
        ce_batch: 2000,
        ..TrainOptions::default()
    };
    let rare_share = |by_class: Option<&[Vec<usize>]>| {
        let b = make_batch(&data, &opts, &classes, by_class, &mut step_rng(3, 0));
        assert_eq!(b.ce_labels.len(), 2000);
        assert!(
            b.ce_labels.iter().all(|&l| l != 1),
            "a class without images is drawn"
        );
        b.ce_labels.iter().filter(|&&l| l == 2).count() as f64 / 2000.0
    };
    let groups = images_by_class(&data, &classes);
    assert_eq!(groups.len(), 2);
    let balanced = rare_share(Some(&groups));
    let proportional = rare_share(None);
    assert!((balanced - 0.5).abs() < 0.05, "balanced share {balanced}");
    assert!(
        (proportional - 0.1).abs() < 0.03,
        "proportional share {proportional}"
    );
}

#[test]
fn options_and_a_saved_module_read_back_as_written() {
    let (dir, cfg, source, _, _) = tiny_setup("readback", false);
    let device = Device::flex();
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    let opts = TrainOptions {
        seed: 77,
        model: cfg.clone(),
        ..TrainOptions::default()
    };
    opts.write(&run).expect("options written");
    let back = TrainOptions::read(&run).expect("options read");
    let json = |o: &TrainOptions| serde_json::to_string(o).expect("json");
    assert_eq!(json(&back), json(&opts));
    assert_eq!(
        source_architecture(&run)
            .expect("architecture")
            .map(|m| m.image_size),
        Some(16)
    );
    // A module saved as a part loads back into the architecture unchanged.
    let ckpt = Checkpoint::new(run.join("ckpt"));
    ckpt.save_module("ema", &source).expect("saved");
    assert!(ckpt.path("ema").exists());
    assert!(!ckpt.exists(), "a module alone is no complete checkpoint");
    // A whole checkpoint: every part in place, the progress readable, no temporary files.
    let optim = AdamConfig::new().init();
    ckpt.save(&source, &source, &optim, &TrainState { step: 7 })
        .expect("checkpoint");
    assert!(ckpt.exists());
    assert_eq!(ckpt.load_state().expect("state").step, 7);
    let files: Vec<String> = std::fs::read_dir(run.join("ckpt"))
        .expect("ckpt dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for part in ["model.bpk", "ema.bpk", "optim.bpk", "state.json"] {
        assert!(files.iter().any(|f| f == part), "{part} missing: {files:?}");
    }
    assert!(!files.iter().any(|f| f.ends_with(".tmp")), "{files:?}");
    let loaded = ckpt.load_module(cfg.init(&device), "ema").expect("loaded");
    let x = Tensor::<4>::random(
        [1, 3, 16, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let c = condition(&[Some(2)], 8, &device);
    let diff = max_abs_diff(
        source.forward(x.clone(), &[40], c.clone()),
        loaded.forward(x, &[40], c),
    );
    assert_eq!(diff, 0.0);
    // A broken or missing options file is an error that names the file; a run folder
    // without one has no known architecture.
    std::fs::write(run.join(TrainOptions::FILE), "{").expect("broken file");
    let e = TrainOptions::read(&run).expect_err("broken");
    assert!(e.to_string().contains("options.json"), "{e}");
    assert!(source_architecture(&run).is_err());
    let none = dir.join("no-run");
    let e = TrainOptions::read(&none).expect_err("missing");
    assert!(e.to_string().contains("options.json"), "{e}");
    assert!(source_architecture(&none).expect("no file").is_none());
}

#[test]
fn denoising_rows_draw_their_timesteps_from_the_denoising_range_only() {
    let data = blank_cells(vec![0, 1]);
    let draw = |range: (usize, usize)| {
        let opts = TrainOptions {
            batch: 4000,
            ce_batch: 0,
            denoise_t_range: range,
            ..TrainOptions::default()
        };
        span(&make_batch(&data, &opts, &[0, 1], None, &mut step_rng(5, 0)).t)
    };
    // The whole schedule by default, so runs from before the option draw as they did.
    let (lo, hi) = draw(TrainOptions::default().denoise_t_range);
    assert!(lo < 5 && hi > 994, "whole schedule: [{lo}, {hi}]");
    let (lo, hi) = draw((50, 600));
    assert!(
        (50..56).contains(&lo) && (594..600).contains(&hi),
        "[{lo}, {hi}]"
    );
    // Old options files, without the field, read as the whole schedule.
    let mut json = serde_json::to_value(TrainOptions::default()).expect("json");
    json.as_object_mut()
        .expect("object")
        .remove("denoise_t_range");
    let old: TrainOptions = serde_json::from_value(json).expect("old options");
    assert_eq!(old.denoise_t_range, (0, 1000));
}

#[test]
fn discriminative_rows_draw_their_timesteps_from_the_discriminative_range_only() {
    let data = blank_cells(vec![0, 1]);
    let opts = TrainOptions {
        batch: 2000,
        ce_batch: 1000,
        denoise_t_range: (0, 1000),
        ce_t_range: (50, 234),
        ..TrainOptions::default()
    };
    let b = make_batch(&data, &opts, &[0, 1], None, &mut step_rng(5, 0));
    assert_eq!(b.t.len(), 2000 + 1000, "one timestep per image");
    let (denoise, ce) = b.t.split_at(2000);
    let (lo, hi) = span(ce);
    assert!(
        (50..56).contains(&lo) && (228..234).contains(&hi),
        "[{lo}, {hi}]"
    );
    // The denoising rows keep their own range: the whole schedule.
    let (lo, hi) = span(denoise);
    assert!(lo < 5 && hi > 994, "denoising rows: [{lo}, {hi}]");
}

#[test]
fn a_timestep_range_outside_the_schedule_is_refused() {
    let (dir, cfg, _, data, _) = tiny_setup("range", false);
    for range in [(600, 600), (0, 1001)] {
        let opts = TrainOptions {
            steps: 1,
            batch: 2,
            ce_batch: 0,
            denoise_t_range: range,
            model: cfg.clone(),
            ..TrainOptions::default()
        };
        let err = train_denoiser(&data, &opts, &dir.join("run"), false, &Device::flex())
            .expect_err("refused");
        assert!(err.to_string().contains("timestep range"), "{err}");
    }
}

#[test]
fn images_of_another_size_or_an_architecture_that_cannot_run_are_refused() {
    let (dir, cfg, _, data, _) = tiny_setup("sizes", false);
    let run = |model: DenoiserConfig| {
        let opts = TrainOptions {
            steps: 1,
            batch: 2,
            ce_batch: 0,
            model,
            ..TrainOptions::default()
        };
        train_denoiser(&data, &opts, &dir.join("run"), false, &Device::flex())
            .expect_err("refused")
            .to_string()
    };
    // 16-px cells for a 32-px model (a valid architecture at patch 4).
    let wide = cfg.clone().with_image_size(32).with_patch(4);
    wide.check().expect("valid");
    let err = run(wide);
    assert!(err.contains("16x16") && err.contains("32x32"), "{err}");
    let err = run(cfg.with_patch(3));
    assert!(err.contains("patch size 3"), "{err}");
    assert!(
        !dir.join("run").join("ckpt").exists(),
        "nothing was trained"
    );
}

/// A run of two plain denoising steps of `cfg` on `data`, in `run_dir`.
fn train_two_steps(data: &CellSet, cfg: &DenoiserConfig, run_dir: &Path) {
    let opts = TrainOptions {
        steps: 2,
        batch: 2,
        ce_batch: 0,
        model: cfg.clone(),
        ..TrainOptions::default()
    };
    train_denoiser(data, &opts, run_dir, false, &Device::flex()).expect("trained");
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does_and_a_new_run_never_overwrites_one() {
    let (dir, cfg, _, data, file) = tiny_setup("resume", false);
    let device = Device::flex();
    // Both runs start from one weights file: the seeded draw of a new model's weights is
    // global to the backend, and other tests draw from it in parallel.
    let opts = TrainOptions {
        steps: 4,
        batch: 2,
        ce_batch: 1,
        checkpoint_every: 2,
        log_every: 1,
        lr: 1e-2,
        warmup: 1,
        model: cfg.clone(),
        init_from: Some(file),
        ..TrainOptions::default()
    };
    let whole = train_denoiser(&data, &opts, &dir.join("whole"), false, &device)
        .expect("uninterrupted run");
    // Interrupted after step 3 (its last checkpoint: step 2), then resumed.
    let split = dir.join("split");
    train_until(&data, &opts, &split, false, &device, 3).expect("first part");
    let ckpt = Checkpoint::new(split.join("ckpt"));
    assert_eq!(ckpt.load_state().expect("state").step, 2);
    let resumed = train_denoiser(&data, &opts, &split, true, &device).expect("resumed");
    let x = Tensor::<4>::random(
        [2, 3, 16, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let c = condition(&[Some(0), None], 8, &device);
    let out = |m: &Denoiser| m.forward(x.clone(), &[30, 700], c.clone());
    let diff = max_abs_diff(out(&whole), out(&resumed));
    assert!(diff < 1e-6, "the resumed run ended {diff} away");
    let fresh = max_abs_diff(out(&whole), out(&cfg.init(&device)));
    assert!(fresh > 1e-3, "training moved the weights ({fresh})");
    assert_eq!(ckpt.load_state().expect("state").step, 4);
    let log = std::fs::read_to_string(split.join("train.log")).expect("log");
    assert!(log.contains("# start at step 2 of 4"), "{log}");

    // A new run in that folder is refused before it touches anything.
    let options_before = std::fs::read_to_string(split.join(TrainOptions::FILE)).expect("opts");
    let other = TrainOptions {
        seed: opts.seed + 1,
        ..opts.clone()
    };
    let e = train_denoiser(&data, &other, &split, false, &device).expect_err("refused");
    assert!(
        e.to_string()
            .contains("already holds a checkpoint at step 4"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(split.join(TrainOptions::FILE)).expect("opts"),
        options_before
    );
    assert_eq!(ckpt.load_state().expect("state").step, 4);
    // Resuming a folder without a checkpoint starts a new run there.
    train_denoiser(&data, &opts, &dir.join("empty"), true, &device).expect("new run");
    assert!(Checkpoint::new(dir.join("empty").join("ckpt")).exists());
}

#[test]
fn init_from_a_run_at_half_the_resolution_carries_its_ema_weights_over() {
    let (dir, cfg, _, data, _) = tiny_setup("finer", false);
    let device = Device::flex();
    train_two_steps(&data, &cfg, &dir.join("a"));
    let fine = cfg.clone().with_image_size(32).with_patch(4);
    let want = Checkpoint::new(dir.join("a").join("ckpt"))
        .load_module(cfg.init(&device), "ema")
        .expect("ema")
        .to_finer_input(&cfg, &fine)
        .expect("carried over");
    // On the autodiff device, as training uses it.
    let got = init_from(&dir.join("a"), &fine, &device.clone().autodiff())
        .expect("init")
        .valid();
    let x = Tensor::<4>::random(
        [1, 3, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let c = condition(&[Some(1)], 8, &device);
    let diff = max_abs_diff(
        want.forward(x.clone(), &[99], c.clone()),
        got.forward(x, &[99], c),
    );
    assert_eq!(diff, 0.0);
    // A finer input that is not a whole multiple of the run's is refused.
    let odd = cfg.with_image_size(48).with_patch(4);
    let e = init_from(&dir.join("a"), &odd, &device).expect_err("refused");
    assert!(e.to_string().contains("same whole factor"), "{e}");
}

#[test]
fn init_from_a_run_with_fewer_blocks_deepens_its_ema_weights() {
    let (dir, cfg, _, data, _) = tiny_setup("deeper", false);
    let device = Device::flex();
    train_two_steps(&data, &cfg, &dir.join("a"));
    let ema = Checkpoint::new(dir.join("a").join("ckpt"))
        .load_module(cfg.init(&device), "ema")
        .expect("ema");
    let levels = cfg.channels.len();
    let deep = cfg.clone().with_extra_blocks(Some(vec![1; levels]));
    let got = init_from(&dir.join("a"), &deep, &device.clone().autodiff())
        .expect("init")
        .valid();
    assert!(got.num_params() > ema.num_params(), "the blocks were added");
    let x = Tensor::<4>::random(
        [1, 3, cfg.image_size, cfg.image_size],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let c = condition(&[Some(1)], 8, &device);
    let diff = max_abs_diff(
        ema.forward(x.clone(), &[99], c.clone()),
        got.forward(x, &[99], c),
    );
    assert!(
        diff < 1e-5,
        "the deepened model predicts what the run's did: {diff}"
    );
    // A source cannot lose blocks.
    let (dir2, _, _, _, _) = tiny_setup("shallower", false);
    train_two_steps(&data, &deep, &dir2.join("a"));
    let e = init_from(&dir2.join("a"), &cfg, &device).expect_err("refused");
    assert!(e.to_string().contains("no level may lose"), "{e}");
}

#[test]
fn each_log_line_is_the_mean_of_its_steps_losses() {
    let (dir, cfg, _, data, file) = tiny_setup("log", false);
    let device = Device::flex();
    // A learning rate of 0 keeps the weights fixed, so each step's loss can be recomputed.
    let opts = TrainOptions {
        steps: 4,
        batch: 2,
        ce_batch: 2,
        lr: 0.0,
        log_every: 2,
        model: cfg.clone(),
        init_from: Some(file.clone()),
        ..TrainOptions::default()
    };
    train_denoiser(&data, &opts, &dir.join("run"), false, &device).expect("train");
    let log = std::fs::read_to_string(dir.join("run/train.log")).expect("log");
    let lines: Vec<Vec<f64>> = log
        .lines()
        .filter(|l| l.starts_with("step "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            [3, 5, 7]
                .iter()
                .map(|&i| w[i].parse().expect("number"))
                .collect()
        })
        .collect();
    assert_eq!(lines.len(), 2, "{log}");

    let autodiff = device.clone().autodiff();
    let model = load_weights_file(cfg.init(&autodiff), &file).expect("weights");
    let classes: Vec<usize> = (0..cfg.num_classes).collect();
    let schedule = NoiseSchedule::ddpm();
    for (line, got) in lines.iter().enumerate() {
        let mut want = [0.0f64; 3];
        for step in 2 * line..2 * line + 2 {
            let batch = make_batch(&data, &opts, &classes, None, &mut step_rng(opts.seed, step));
            let (_, logged) =
                batch_loss(&model, batch, None, &classes, &opts, &schedule, &autodiff);
            let v = logged.into_data().try_to_vec::<f32>().expect("f32");
            for (w, x) in want.iter_mut().zip(v) {
                *w += x as f64 / 2.0;
            }
        }
        // The log prints mse to 4 decimals, ce and accuracy to 3.
        for (i, tol) in [(0, 6e-5), (1, 6e-4), (2, 6e-4)] {
            assert!(
                (got[i] - want[i]).abs() < tol,
                "line {line}, figure {i}: logged {} but the steps' mean is {}",
                got[i],
                want[i]
            );
        }
        assert!(want[0] > 0.0 && want[1] > 0.0, "degenerate losses {want:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn init_from_half_precision_weights_starts_from_those_weights() {
    // From the file itself, and from a run folder that holds it as its EMA weights.
    for from_run in [false, true] {
        init_from_half_precision(from_run);
    }
}

fn init_from_half_precision(from_run: bool) {
    let name = if from_run { "init-run" } else { "init" };
    let (dir, cfg, source, data, file) = tiny_setup(name, true);
    let src = if from_run {
        let ckpt = dir.join("source").join("ckpt");
        std::fs::create_dir_all(&ckpt).expect("mkdir");
        std::fs::copy(&file, ckpt.join("ema.bpk")).expect("copy");
        dir.join("source")
    } else {
        file.clone()
    };
    let device = Device::flex();
    // A learning rate of 0: the one step leaves the weights where they started.
    let opts = TrainOptions {
        steps: 1,
        batch: 2,
        ce_batch: 1,
        lr: 0.0,
        model: cfg.clone(),
        init_from: Some(src),
        ..TrainOptions::default()
    };
    let trained = train_denoiser(&data, &opts, &dir.join("run"), false, &device).expect("train");

    let x = Tensor::<4>::random(
        [2, 3, 16, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let cond = condition(&[Some(1), None], cfg.num_classes, &device);
    let out = |m: &Denoiser| m.forward(x.clone(), &[100, 500], cond.clone());
    let (want, got, fresh) = (out(&source), out(&trained), out(&cfg.init(&device)));
    let scale = want.clone().abs().max().into_scalar::<f32>();
    let from_file = max_abs_diff(want.clone(), got);
    let from_scratch = max_abs_diff(want, fresh);
    assert!(
        from_file < 0.01 * scale,
        "started {from_file} away from the file's weights (output scale {scale})"
    );
    assert!(
        from_scratch > 10.0 * from_file,
        "a fresh model is as close ({from_scratch}) as the loaded one ({from_file})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `t`'s values, row-major.
fn rows(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32")
}

/// A small baseline saved with its card in `dir` (leaving out `excluded`); returns its path
/// and its own probabilities at the card's temperature for `images` (`[n, 3, 16, 16]`).
fn teacher_file(dir: &Path, excluded: Option<usize>, images: &[f32]) -> (PathBuf, Vec<Vec<f32>>) {
    use crate::baseline::{BaselineCard, BaselineConfig};
    let device = Device::flex();
    let config = BaselineConfig::new().with_channels(vec![4, 8]);
    let model = config.init(&device);
    let card = BaselineCard {
        config,
        image_size: 16,
        temperature: 0.7,
        excluded,
    };
    let file = dir.join("teacher.bpk");
    let bytes = model.clone().into_record().into_bytes().expect("record");
    std::fs::write(&file, bytes.to_vec()).expect("write teacher");
    std::fs::write(
        file.with_extension("json"),
        serde_json::to_string(&card).expect("card"),
    )
    .expect("write card");
    let n = images.len() / (3 * 16 * 16);
    let x = Tensor::<4>::from_data(TensorData::new(images.to_vec(), [n, 3, 16, 16]), &device);
    (file, model.probabilities(x, 0.7).expect("probabilities"))
}

#[test]
fn teacher_targets_mix_its_probabilities_with_the_labels() {
    let (dir, cfg, _, data, _) = tiny_setup("teacher", false);
    let (file, p) = teacher_file(&dir, None, &data.pixels);
    let classes: Vec<usize> = (0..8).collect();
    let opts = |mix: f32| TrainOptions {
        model: cfg.clone(),
        ce_teacher: Some(file.clone()),
        ce_teacher_mix: mix,
        ..TrainOptions::default()
    };
    let device = Device::flex();
    let images = || {
        let x = TensorData::new(data.pixels.clone(), [data.len(), 3, 16, 16]);
        Tensor::<4>::from_data(x, &device)
    };
    let targets = |mix: f32| {
        let t = Teacher::load(&opts(mix), 16, &device)
            .expect("load")
            .expect("teacher");
        rows(t.targets(images(), &data.labels, &classes))
    };
    assert_eq!(targets(0.0), rows(one_hot(&data.labels, 8, &device)));
    let full = targets(1.0);
    let half = targets(0.5);
    for (i, &label) in data.labels.iter().enumerate() {
        let row = &full[i * 8..(i + 1) * 8];
        for (a, b) in row.iter().zip(&p[i]) {
            assert!((a - b).abs() < 1e-5, "teacher {a} against {b}");
        }
        for c in 0..8 {
            let hot = if c == label { 1.0 } else { 0.0 };
            let want = 0.5 * hot + 0.5 * p[i][c];
            assert!((half[i * 8 + c] - want).abs() < 1e-5);
        }
    }
    // In a step's batch the teacher sees the discriminative images (the last ones), and
    // only their targets change.
    let opts = TrainOptions {
        batch: 3,
        ce_batch: 2,
        ..opts(1.0)
    };
    let batch = make_batch(&data, &opts, &classes, None, &mut step_rng(5, 0));
    let x0 = Tensor::<4>::from_data(TensorData::new(batch.x0.clone(), [5, 3, 16, 16]), &device);
    let labels = &batch.ce_labels;
    let hot = ce_targets(x0.clone(), labels, None, &classes);
    assert_eq!(rows(hot), rows(one_hot(labels, 8, &device)));
    let t = Teacher::load(&opts, 16, &device)
        .expect("load")
        .expect("teacher");
    let got = rows(ce_targets(x0, labels, Some(&t), &classes));
    let n = 3 * 16 * 16;
    let x = TensorData::new(batch.x0[3 * n..].to_vec(), [2, 3, 16, 16]);
    let want = t
        .model
        .probabilities(Tensor::<4>::from_data(x, &device), 0.7);
    let want = want.expect("probabilities");
    assert_eq!(got.len(), 16);
    for (got, want) in got.iter().zip(want.concat()) {
        assert!((got - want).abs() < 1e-5, "{got} against {want}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn teacher_targets_renormalise_over_the_training_classes() {
    let (dir, cfg, _, data, _) = tiny_setup("teacher-subset", false);
    let (file, p) = teacher_file(&dir, Some(2), &data.pixels);
    let classes: Vec<usize> = vec![0, 1, 3, 4, 5, 6, 7];
    let opts = TrainOptions {
        model: cfg,
        exclude_class: Some(2),
        ce_teacher: Some(file),
        ce_teacher_mix: 1.0,
        ..TrainOptions::default()
    };
    let device = Device::flex();
    let t = Teacher::load(&opts, 16, &device)
        .expect("load")
        .expect("teacher");
    let labels = vec![0, 1, 2, 3]; // indices into `classes`
    let x = TensorData::new(data.pixels.clone(), [data.len(), 3, 16, 16]);
    let out = rows(t.targets(Tensor::<4>::from_data(x, &device), &labels, &classes));
    for (i, row) in out.chunks(7).enumerate() {
        let kept: f32 = classes.iter().map(|&c| p[i][c]).sum();
        for (j, &c) in classes.iter().enumerate() {
            assert!((row[j] - p[i][c] / kept).abs() < 1e-5);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_teacher_that_does_not_fit_the_run_is_refused() {
    let (dir, cfg, _, data, _) = tiny_setup("teacher-refused", false);
    let (file, _) = teacher_file(&dir, None, &data.pixels);
    let device = Device::flex();
    let base = TrainOptions {
        model: cfg,
        ce_teacher: Some(file.clone()),
        ce_teacher_mix: 0.5,
        ..TrainOptions::default()
    };
    let refused = |opts: TrainOptions, size: usize| match Teacher::load(&opts, size, &device) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    };
    // A leave-one-out run must not learn the left-out class through an 8-class teacher.
    let e = refused(
        TrainOptions {
            exclude_class: Some(2),
            ..base.clone()
        },
        16,
    );
    assert!(e.contains("leaves out"), "{e}");
    assert!(refused(base.clone(), 32).contains("32x32"));
    let e = refused(
        TrainOptions {
            ce_teacher_mix: 1.5,
            ..base.clone()
        },
        16,
    );
    assert!(e.contains("[0, 1]"), "{e}");
    let e = refused(
        TrainOptions {
            ce_teacher: None,
            ..base.clone()
        },
        16,
    );
    assert!(e.contains("without a teacher"), "{e}");
    let e = refused(
        TrainOptions {
            ce_teacher: Some(dir.join("none.bpk")),
            ..base
        },
        16,
    );
    assert!(e.contains("none.json"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
