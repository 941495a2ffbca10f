//! Checkpoints of a training run: weights, EMA weights, optimiser state and step, each written
//! in full under a temporary name and then renamed into place, so an interrupted save leaves
//! the previous checkpoint (short of a crash within the final renames).

use crate::error::{Error, Result};
use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Progress of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps completed.
    pub step: usize,
}

/// Load a weights file (a checkpoint part or shipped model weights, f32 or f16) into `module`.
pub fn load_weights_file<M: Module>(module: M, path: &Path) -> Result<M> {
    let record = ModuleRecord::load(path)
        .map_err(rec_err)?
        // Half-precision files load into the f32 model.
        .cast_to_module_dtype();
    module.try_load_record(record).map_err(rec_err)
}

/// A run's log, `run_dir/train.log`, opened for appending (created if missing), so that a
/// resumed run continues the log of the run it resumes.
pub fn open_run_log(run_dir: &Path) -> Result<std::fs::File> {
    let path = run_dir.join("train.log");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))
}

/// A checkpoint folder.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
}

fn rec_err(e: impl std::fmt::Display) -> Error {
    Error::Weights(e.to_string())
}

/// A module's record as the bytes of a `.bpk` file.
fn module_bytes<M: Module>(module: &M) -> Result<Vec<u8>> {
    Ok(module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(rec_err)?
        .to_vec())
}

impl Checkpoint {
    /// A checkpoint living in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Whether a complete checkpoint is present.
    pub fn exists(&self) -> bool {
        self.dir.join("state.json").exists()
    }

    /// Path of a named part.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.bpk"))
    }

    /// Write each `(file, bytes)` into the folder: all to temporary names (`<file>.tmp`) first,
    /// then each renamed into place, in order. A crash while writing leaves the previous files
    /// untouched; only one during the renames (a few system calls) can leave some files new and
    /// the others old.
    fn write_files(&self, files: &[(&str, &[u8])]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let tmp = |file: &str| self.dir.join(format!("{file}.tmp"));
        for (file, bytes) in files {
            std::fs::write(tmp(file), bytes).map_err(|e| Error::io(tmp(file), e))?;
        }
        for (file, _) in files {
            let path = self.dir.join(file);
            std::fs::rename(tmp(file), &path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// Save one module as the named part (`<name>.bpk`), atomically; [`Checkpoint::load_module`]
    /// reads it back.
    pub fn save_module<M: Module>(&self, name: &str, module: &M) -> Result<()> {
        let bytes = module_bytes(module)?;
        self.write_files(&[(&format!("{name}.bpk"), &bytes)])
    }

    /// Save weights, EMA weights, optimiser state and progress. Every part is written in full
    /// under a temporary name before any replaces the previous checkpoint's, and the progress
    /// (`state.json`, what [`Checkpoint::exists`] looks for) is renamed last.
    pub fn save<M: Module>(
        &self,
        model: &M,
        ema: &M,
        optim: &ModuleOptimizer,
        state: &TrainState,
    ) -> Result<()> {
        let model = module_bytes(model)?;
        let ema = module_bytes(ema)?;
        let optim = optim.to_record().into_bytes().map_err(rec_err)?;
        let json = serde_json::to_string(state).map_err(|e| Error::Invalid(e.to_string()))?;
        self.write_files(&[
            ("model.bpk", &model),
            ("ema.bpk", &ema),
            ("optim.bpk", &optim),
            ("state.json", json.as_bytes()),
        ])
    }

    /// Where a training run starts: `Some(progress)` to continue this checkpoint when `resume`
    /// is asked and one exists, `None` for a new run (also when `resume` finds no checkpoint, so
    /// a script that always resumes can start the run; that is said on stderr, so that a
    /// mistyped folder does not pass unnoticed as a new run). A new run in a folder that already
    /// holds a checkpoint is refused: it would overwrite that run's weights at its first save.
    pub fn resume_point(&self, resume: bool) -> Result<Option<TrainState>> {
        if !self.exists() {
            if resume {
                eprintln!(
                    "--resume: {} holds no checkpoint; starting a new run",
                    self.dir.display()
                );
            }
            return Ok(None);
        }
        let state = self.load_state()?;
        if resume {
            Ok(Some(state))
        } else {
            Err(Error::Invalid(format!(
                "{} already holds a checkpoint at step {}: pass --resume to continue that run, or \
                 choose another run folder (a new run would overwrite it)",
                self.dir.display(),
                state.step
            )))
        }
    }

    /// Progress of the saved run.
    pub fn load_state(&self) -> Result<TrainState> {
        let p = self.dir.join("state.json");
        let s = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        serde_json::from_str(&s).map_err(|e| Error::Weights(format!("{}: {e}", p.display())))
    }

    /// Load a named module part into `module` (built with the run's architecture); a part
    /// written in half precision (shipped weights put in a run folder) loads as well.
    pub fn load_module<M: Module>(&self, module: M, name: &str) -> Result<M> {
        load_weights_file(module, &self.path(name))
    }

    /// Load the optimiser state.
    pub fn load_optim(&self) -> Result<OptimizerRecord> {
        OptimizerRecord::load(self.path("optim")).map_err(rec_err)
    }
}
