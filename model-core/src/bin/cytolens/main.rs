//! `cytolens`: train, calibrate, evaluate, classify and benchmark the CytoLens models.

use burn::prelude::Device;
use clap::{Parser, Subcommand};
use model_core::classes::{class_index, CLASSES};
use model_core::dataset::Split;
use model_core::train::{train_denoiser, TrainOptions};
use model_core::unet::DenoiserConfig;
use std::path::PathBuf;
use std::process::ExitCode;

mod commands;

use commands::SplitSource;

#[derive(Parser)]
#[command(
    name = "cytolens",
    about = "CytoLens diffusion classifier of white blood cells"
)]
struct Cli {
    /// Root of the shared data (holds pbc/ and bccd/).
    #[arg(long, global = true, default_value = "../shared/data")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the class-conditional denoiser (background-friendly: log + checkpoints + resume).
    Train {
        /// Run folder (log, checkpoints).
        #[arg(long, default_value = "runs/diffusion")]
        run: PathBuf,
        /// Continue from the run's last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Total optimiser steps.
        #[arg(long, default_value_t = 4000)]
        steps: usize,
        /// Denoising-loss batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Images per step denoised under every class.
        #[arg(long, default_value_t = 4)]
        ce_batch: usize,
        /// Weight of the discriminative term.
        #[arg(long, default_value_t = 0.1)]
        ce_weight: f32,
        /// Channels per level, comma separated.
        #[arg(long, default_value = "32,64,128")]
        channels: String,
        /// Model resolution (side of the square crop, from the 128x128 data).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Patch size of the pixel-unshuffle in front of the UNet (the UNet's first level runs at
        /// `size / patch`).
        #[arg(long, default_value_t = 2)]
        patch: usize,
        /// Let only the last N decoder blocks see the class (1 to the number of levels): the
        /// rest of the UNet is a class-free trunk that runs once per noised image, shared by
        /// every class. Default: every block sees the class.
        #[arg(long)]
        class_blocks: Option<usize>,
        /// Extra residual blocks per level, comma separated (one entry per level): each
        /// encoder and decoder block of level i is followed by that many more. With
        /// `--init-from` a model with fewer is deepened, the new blocks starting as the
        /// identity. Default: none.
        #[arg(long)]
        extra_blocks: Option<String>,
        /// Leave this class out (anomaly experiment).
        #[arg(long)]
        exclude: Option<String>,
        /// Timesteps of the denoising loss, `LO,HI` (the classifier reads 50,600).
        #[arg(long, default_value = "0,1000")]
        denoise_t_range: String,
        /// Timesteps of the discriminative term, `LO,HI` (the classifier reads 50,600 and
        /// weighs its lowest strata most).
        #[arg(long, default_value = "50,600")]
        ce_t_range: String,
        /// Steps between checkpoints.
        #[arg(long, default_value_t = 100)]
        checkpoint_every: usize,
        /// Use only this many training images (smoke runs).
        #[arg(long)]
        limit: Option<usize>,
        /// Peak learning rate.
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// Linear warm-up steps.
        #[arg(long, default_value_t = 200)]
        warmup: usize,
        /// Initialise from the EMA weights of another run folder, or from a weights file such as
        /// `static/model/cytolens-diffusion.bpk` (fine-tuning).
        #[arg(long)]
        init_from: Option<PathBuf>,
        /// Backend: `cpu` (burn's flex) or `wgpu` (a GPU through Vulkan/Metal/DX12; needs a build
        /// with `--features gpu`).
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Seed of the batches (images, augmentations, noise, timesteps). A fine-tuning stage
        /// with a new seed sees other batches than the stage before it.
        #[arg(long, default_value_t = TrainOptions::default().seed)]
        seed: u64,
        /// Draw the discriminative term's images class-balanced (each class equally often)
        /// instead of in proportion to the training split.
        #[arg(long)]
        ce_balanced: bool,
        /// Distil from a calibrated baseline CNN (e.g. `models/eval/cytolens-baseline.bpk`, its
        /// card beside it): its probabilities are mixed into the discriminative term's
        /// targets. It must leave out the same class as the run (`--exclude`).
        #[arg(long)]
        ce_teacher: Option<PathBuf>,
        /// The teacher's share of those targets, 0 to 1 (needs `--ce-teacher`).
        #[arg(long, default_value_t = 0.0)]
        ce_teacher_mix: f32,
    },
    /// Train the discriminative baseline CNN.
    TrainBaseline {
        /// Run folder.
        #[arg(long, default_value = "runs/baseline")]
        run: PathBuf,
        /// Continue from the last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Total steps.
        #[arg(long, default_value_t = 1500)]
        steps: usize,
        /// Batch size.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Input resolution (side of the square crop, from the 128x128 data).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Leave this class out (anomaly experiment).
        #[arg(long)]
        exclude: Option<String>,
        /// Use only this many training images (smoke runs).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Fit the diffusion classifier on val and write the model files (card + weights).
    Calibrate {
        /// Training run to take the EMA weights from.
        #[arg(long, default_value = "runs/diffusion")]
        run: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "static/model")]
        out: PathBuf,
        /// File stem of the written model.
        #[arg(long, default_value = "cytolens-diffusion")]
        stem: String,
        /// Val cells used (evenly spread over the split); each costs 8 x 12 evaluations.
        #[arg(long, default_value_t = 600)]
        val_limit: usize,
        /// Accuracy the auto-accepted cells must reach on val.
        #[arg(long, default_value_t = 0.995)]
        target_accuracy: f32,
        /// Write the weights in half precision (f16; half the bytes).
        #[arg(long)]
        half: bool,
        /// Show each round the cell in another of its 8 rotations/flips (`views` in the card).
        #[arg(long)]
        views: bool,
        /// Rounds that also denoise each cell with the "no class" token (one evaluation each);
        /// the anomaly score is then the gain profile of those rounds. 0: the older
        /// typical-error score. No class is screened out inside these rounds.
        #[arg(long, default_value_t = 2)]
        uncond_rounds: usize,
        /// For a run trained without a class: also evaluate this many val cells of that class and
        /// print the val AUROC of the anomaly score (a diagnostic; not used by the fit).
        #[arg(long, default_value_t = 120)]
        ood_limit: usize,
        /// Timesteps the rounds are drawn from, `LO,HI` (one stratum of the range per round).
        #[arg(long, default_value = "50,600")]
        t_range: String,
        /// Fit the score weights and class offsets with every class weighing equally (the rule
        /// for balanced accuracy) instead of in proportion to val (`balanced_fit` in the card).
        #[arg(long)]
        balanced: bool,
        /// Screen classes out before the paired test can act (after round 2 with the 2 "no
        /// class" rounds; after rounds 1 and 2 with one): each screen is fitted to drop the true
        /// class of at most this share of the val cells that would otherwise be classified right
        /// (`screen_miss` in the card). 0: no screen.
        #[arg(long, default_value_t = 0.001)]
        screen_miss: f32,
        /// Classes every screen keeps whatever their gaps, the leading class first: 2 keeps the
        /// runner-up for the paired test to decide (`screen_keep` in the card). At least 1.
        #[arg(long, default_value_t = 2)]
        screen_keep: usize,
        /// The colour gate passes this share of the val cells; a cell beyond (colours unlike
        /// the calibration cells': another stain, lab or camera) is triaged `anomaly`.
        #[arg(long, default_value_t = model_core::colour_gate::DEFAULT_QUANTILE)]
        colour_quantile: f32,
        /// The focus gate passes this share of the val cells; a cell blurrier than the rest
        /// (out of focus, or too few pixels per cell) is never auto-accepted.
        #[arg(long, default_value_t = model_core::focus_gate::DEFAULT_QUANTILE)]
        focus_quantile: f32,
    },
    /// Fit the colour gate of a calibrated model on every val cell and write its card (the
    /// weights and every other fitted value unchanged).
    ColourGate {
        /// Folder of the model.
        #[arg(long, default_value = "static/model")]
        model: PathBuf,
        /// File stem.
        #[arg(long, default_value = "cytolens-diffusion")]
        stem: String,
        /// Share of the val cells the gate passes.
        #[arg(long, default_value_t = model_core::colour_gate::DEFAULT_QUANTILE)]
        quantile: f32,
    },
    /// Fit the focus gate of a calibrated model on every val cell and write its card (the
    /// weights and every other fitted value unchanged).
    FocusGate {
        /// Folder of the model.
        #[arg(long, default_value = "static/model")]
        model: PathBuf,
        /// File stem.
        #[arg(long, default_value = "cytolens-diffusion")]
        stem: String,
        /// Share of the val cells the gate passes.
        #[arg(long, default_value_t = model_core::focus_gate::DEFAULT_QUANTILE)]
        quantile: f32,
    },
    /// Rewrite a model's weights in half precision (f16), in place.
    Half {
        /// Folder of the model.
        #[arg(long, default_value = "static/model")]
        model: PathBuf,
        /// File stem.
        #[arg(long, default_value = "cytolens-diffusion")]
        stem: String,
    },
    /// Fit the baseline's temperature on val and write its files.
    CalibrateBaseline {
        /// Training run.
        #[arg(long, default_value = "runs/baseline")]
        run: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "models/eval")]
        out: PathBuf,
        /// File stem.
        #[arg(long, default_value = "cytolens-baseline")]
        stem: String,
    },
    /// Evaluate both models on a split and write the report.
    Eval {
        /// Split to report on.
        #[arg(long, default_value = "test")]
        split: String,
        /// Folder of the diffusion model.
        #[arg(long, default_value = "static/model")]
        model: PathBuf,
        /// Folder of the baseline and of the leave-erythroblast-out models.
        #[arg(long, default_value = "models/eval")]
        eval_models: PathBuf,
        /// Report JSON path.
        #[arg(long, default_value = "report.json")]
        json: PathBuf,
        /// Reliability diagram SVG path.
        #[arg(long, default_value = "docs/reliability.svg")]
        svg: PathBuf,
        /// Evaluate only this many cells (evenly spread), for quick checks.
        #[arg(long)]
        limit: Option<usize>,
        /// Evaluate the leave-erythroblast-out models on this many cells (evenly spread).
        #[arg(long)]
        anomaly_limit: Option<usize>,
        /// Only (re)compute the anomaly figures and merge them into the existing report.
        #[arg(long)]
        only_anomaly: bool,
        /// Also write one CSV row per cell (class, confidence, uncertainty, anomaly, triage,
        /// evaluations and every class's probability, with the baseline's beside them).
        #[arg(long)]
        cells: Option<PathBuf>,
        /// Also write the viewer's sheet of the figures (overall, per class, triage; tied to
        /// the weights by their SHA-256), e.g. static/model/cytolens-diffusion.sheet.json.
        #[arg(long)]
        sheet: Option<PathBuf>,
    },
    /// Classify image files, one line each.
    Classify {
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
        /// Print CSV with a header (one row per cell, every class's probability as `p_<class>`;
        /// a file that failed is a row with its `error`), for a spreadsheet.
        #[arg(long, conflicts_with_all = ["json", "differential"])]
        csv: bool,
        /// Folder of the diffusion model.
        #[arg(long, default_value = "static/model")]
        model: PathBuf,
        /// Treat each file as a smear field: detect its white cells and classify each one (one
        /// line per cell, with its box); a field without white cells is an error.
        #[arg(long)]
        smear: bool,
        /// After the cells, the leukocyte differential of all of them (as one smear): each
        /// leukocyte class's percentage with its exact 95 % interval, nucleated red cells per
        /// 100 leukocytes, the rest not in the percentages; a cell of unusual colour counts as
        /// such, not as its class. With `--json`, one last line `{"differential": ...}`.
        #[arg(long)]
        differential: bool,
        /// With `--smear`: crop every field's cells at this red-cell diameter (pixels, 8 to
        /// 2000) instead of each field's own reading, as the viewer's diameter field does (also
        /// for a single-cell image magnified more than the training images).
        #[arg(long, requires = "smear", conflicts_with = "slide", value_parser = parse_diameter)]
        rbc_diameter: Option<f32>,
        /// With `--smear`: the files are fields of one slide (one smear, one magnification):
        /// crop every field's cells at the slide's red-cell size, the median of the fields' own
        /// readings (at least 3), and note each field whose own reading is more than 20 % off.
        #[arg(long, requires = "smear")]
        slide: bool,
        /// Images of single cells (any size; centre-cropped and resized like the training data),
        /// or smear fields with `--smear`. A folder stands for the image files under it
        /// (JPEG, PNG, TIFF, BMP, WebP by extension; subfolders included, in name order); a
        /// phone's photo there (HEIC, HEIF, AVIF, JPEG XL), which the CLI cannot read, is
        /// named with an error rather than skipped.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Val accuracy of the shipped model under other classifier settings, replayed exactly
    /// from one full evaluation (diagnostics for tuning; reports nothing on test).
    Tune {
        /// Folder of the diffusion model.
        #[arg(long, default_value = "static/model")]
        model: PathBuf,
        /// Val cells (evenly spread).
        #[arg(long, default_value_t = 240)]
        val_limit: usize,
    },
    /// Detection against BCCD's white-cell boxes: recall and precision at IoU 0.5, counts.
    DetectEval {
        /// Print one line per field.
        #[arg(long)]
        verbose: bool,
    },
    /// Cells per second and denoiser evaluations per cell on this CPU.
    Bench {
        /// Folder of the diffusion model.
        #[arg(long, default_value = "static/model")]
        model: PathBuf,
        /// Test cells to classify.
        #[arg(long, default_value_t = 64)]
        cells: usize,
    },
}

/// The device of a `--backend` name.
fn backend_device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "gpu")]
        "wgpu" => Device::wgpu_options()
            .init()
            .map_err(|e| format!("--backend wgpu: no GPU adapter ({e:?})")),
        #[cfg(not(feature = "gpu"))]
        "wgpu" => {
            Err("--backend wgpu: this build has no GPU backend; build with `--features gpu`".into())
        }
        other => Err(format!("--backend '{other}': expected cpu or wgpu")),
    }
}

/// A comma-separated list of whole numbers given to option `flag`.
fn parse_list(flag: &str, s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|c| {
            c.trim()
                .parse::<usize>()
                .map_err(|e| format!("{flag} '{s}': {e}"))
        })
        .collect()
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Train {
            run,
            resume,
            steps,
            batch,
            ce_batch,
            ce_weight,
            channels,
            size,
            patch,
            class_blocks,
            extra_blocks,
            exclude,
            checkpoint_every,
            limit,
            lr,
            warmup,
            init_from,
            backend,
            seed,
            ce_balanced,
            denoise_t_range,
            ce_t_range,
            ce_teacher,
            ce_teacher_mix,
        } => {
            let device = backend_device(&backend)?;
            let exclude_class = parse_class(exclude)?;
            let opts = TrainOptions {
                steps,
                batch,
                ce_batch,
                ce_weight,
                checkpoint_every,
                exclude_class,
                lr,
                warmup,
                init_from,
                seed,
                ce_balanced,
                ce_teacher,
                ce_teacher_mix,
                denoise_t_range: parse_t_range("--denoise-t-range", &denoise_t_range)?,
                ce_t_range: parse_t_range("--ce-t-range", &ce_t_range)?,
                model: DenoiserConfig::new()
                    .with_channels(parse_list("--channels", &channels)?)
                    .with_image_size(size)
                    .with_patch(patch)
                    .with_class_blocks(class_blocks)
                    .with_extra_blocks(
                        extra_blocks
                            .map(|e| parse_list("--extra-blocks", &e))
                            .transpose()?,
                    ),
                ..TrainOptions::default()
            };
            let mut data = SplitSource::new(&cli.data, Split::Train).at(size)?;
            if let Some(n) = limit {
                data = data.subsample(n);
            }
            let used = data
                .labels
                .iter()
                .filter(|&&l| Some(l) != exclude_class)
                .count();
            let left_out = match data.len() - used {
                0 => String::new(),
                n => format!(" ({n} of the left-out class set aside)"),
            };
            eprintln!(
                "training on {used} images{left_out}, {:.3} GFLOP per forward",
                opts.model.flops() as f64 / 1e9
            );
            train_denoiser(&data, &opts, &run, resume, &device).map_err(|e| e.to_string())?;
            Ok(())
        }
        Command::TrainBaseline {
            run,
            resume,
            steps,
            batch,
            size,
            exclude,
            limit,
        } => {
            let exclude = parse_class(exclude)?;
            let mut data = SplitSource::new(&cli.data, Split::Train).at(size)?;
            if let Some(n) = limit {
                data = data.subsample(n);
            }
            commands::train_baseline(&data, &run, steps, batch, exclude, resume)
        }
        Command::Calibrate {
            run,
            out,
            stem,
            val_limit,
            target_accuracy,
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
        } => {
            let val = SplitSource::new(&cli.data, Split::Val);
            let o = commands::CalibrateOptions {
                val_limit,
                target: target_accuracy,
                half,
                views,
                uncond_rounds,
                ood_limit,
                t_range: Some(parse_t_range("--t-range", &t_range)?),
                balanced,
                screen_miss,
                screen_keep,
                colour_quantile,
                focus_quantile,
            };
            commands::calibrate(&run, &out, &stem, &val, &o)
        }
        Command::ColourGate {
            model,
            stem,
            quantile,
        } => commands::colour_gate(
            &model,
            &stem,
            &SplitSource::new(&cli.data, Split::Val),
            quantile,
        ),
        Command::FocusGate {
            model,
            stem,
            quantile,
        } => commands::focus_gate(
            &model,
            &stem,
            &SplitSource::new(&cli.data, Split::Val),
            quantile,
        ),
        Command::Half { model, stem } => commands::to_half(&model, &stem),
        Command::CalibrateBaseline { run, out, stem } => {
            let val = SplitSource::new(&cli.data, Split::Val);
            commands::calibrate_baseline(&run, &out, &stem, &val)
        }
        Command::Eval {
            split,
            model,
            eval_models,
            json,
            svg,
            limit,
            anomaly_limit,
            only_anomaly,
            cells,
            sheet,
        } => {
            let split = Split::parse(&split).map_err(|e| e.to_string())?;
            let mut source = SplitSource::new(&cli.data, split);
            if let Some(n) = limit {
                source = source.thinned(n);
            }
            if only_anomaly {
                if cells.is_some() || sheet.is_some() {
                    return Err(
                        "--cells and --sheet need the full evaluation, not --only-anomaly".into(),
                    );
                }
                return commands::eval_anomaly(&source, anomaly_limit, &eval_models, &json);
            }
            commands::eval(
                &source,
                anomaly_limit,
                &model,
                &eval_models,
                commands::EvalOutputs {
                    json: &json,
                    svg: &svg,
                    cells: cells.as_deref(),
                    sheet: sheet.as_deref(),
                },
            )
        }
        Command::Tune { model, val_limit } => {
            let val = SplitSource::new(&cli.data, Split::Val).thinned(val_limit);
            commands::tune(&model, &val)
        }
        Command::DetectEval { verbose } => commands::detect_eval(&cli.data, verbose),
        Command::Classify {
            json,
            csv,
            model,
            smear,
            differential,
            rbc_diameter,
            slide,
            files,
        } => {
            let scale = match (smear, rbc_diameter, slide) {
                (false, _, _) => commands::Scale::SingleCells,
                (true, Some(d), _) => commands::Scale::Fixed(d),
                (true, None, true) => commands::Scale::Slide,
                (true, None, false) => commands::Scale::EachField,
            };
            let format = match (json, csv) {
                (true, _) => commands::Format::Json,
                (false, true) => commands::Format::Csv,
                (false, false) => commands::Format::Text,
            };
            commands::classify(&model, &files, format, scale, differential)
        }
        Command::Bench { model, cells } => {
            let data = SplitSource::new(&cli.data, Split::Test).thinned(cells);
            commands::bench(&model, &data)
        }
    }
}

/// `LO,HI` with `LO < HI <= 1000` (the schedule's timesteps).
fn parse_t_range(flag: &str, s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("{flag} '{s}': expected LO,HI with 0 <= LO < HI <= 1000");
    let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
    let lo: usize = lo.trim().parse().map_err(|_| bad())?;
    let hi: usize = hi.trim().parse().map_err(|_| bad())?;
    if lo >= hi || hi > 1000 {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// A red-cell diameter in pixels, 8 to 2000 (the viewer's bounds).
fn parse_diameter(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(d) if (8.0..=2000.0).contains(&d) => Ok(d),
        _ => Err(format!(
            "'{s}' is not a red-cell diameter: a number of pixels from 8 to 2000"
        )),
    }
}

fn parse_class(name: Option<String>) -> Result<Option<usize>, String> {
    match name {
        Some(n) => class_index(&n)
            .map(Some)
            .ok_or_else(|| format!("unknown class '{n}' (one of {})", CLASSES.join(", "))),
        None => Ok(None),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
