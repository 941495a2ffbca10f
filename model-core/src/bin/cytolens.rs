//! `cytolens`: train, calibrate, evaluate, classify and benchmark the CytoLens models.

use clap::{Parser, Subcommand};
use model_core::dataset::{load_split, Split};
use model_core::train::{train_denoiser, TrainOptions};
use model_core::unet::DenoiserConfig;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cytolens", about = "CytoLens diffusion classifier of white blood cells")]
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
        /// Model resolution.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Leave this class out (anomaly experiment).
        #[arg(long)]
        exclude: Option<String>,
        /// Steps between checkpoints.
        #[arg(long, default_value_t = 100)]
        checkpoint_every: usize,
        /// Use only this many training images (smoke runs).
        #[arg(long)]
        limit: Option<usize>,
    },
}

fn parse_channels(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|c| c.trim().parse::<usize>().map_err(|e| format!("--channels '{s}': {e}")))
        .collect()
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Train { run, resume, steps, batch, ce_batch, ce_weight, channels, size, exclude, checkpoint_every, limit } => {
            let exclude_class = match exclude {
                Some(name) => Some(
                    model_core::classes::class_index(&name).ok_or_else(|| format!("unknown class '{name}'"))?,
                ),
                None => None,
            };
            let opts = TrainOptions {
                steps,
                batch,
                ce_batch,
                ce_weight,
                checkpoint_every,
                exclude_class,
                model: DenoiserConfig::new().with_channels(parse_channels(&channels)?).with_image_size(size),
                ..TrainOptions::default()
            };
            let mut data = load_split(&cli.data, Split::Train, size, &PathBuf::from("runs/cache")).map_err(|e| e.to_string())?;
            if let Some(n) = limit {
                data = data.subsample(n);
            }
            eprintln!("training on {} images, {:.3} GFLOP per forward", data.len(), opts.model.flops() as f64 / 1e9);
            train_denoiser(&data, &opts, &run, resume).map_err(|e| e.to_string())?;
            Ok(())
        }
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
