//! Checkpoints of a training run: weights, EMA weights, optimiser state and step, written
//! atomically (to a temporary name, then renamed) so an interrupted save never corrupts a run.

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

    /// Write `bytes` to `file` in the folder atomically: to `file.tmp` first, then renamed.
    fn write_atomic(&self, file: &str, bytes: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.dir.join(file);
        let tmp = self.dir.join(format!("{file}.tmp"));
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Save one module as the named part (`<name>.bpk`), atomically; [`Checkpoint::load_module`]
    /// reads it back.
    pub fn save_module<M: Module>(&self, name: &str, module: &M) -> Result<()> {
        let bytes = module.clone().into_record().into_bytes().map_err(rec_err)?;
        self.write_atomic(&format!("{name}.bpk"), &bytes)
    }

    /// Save weights, EMA weights, optimiser state and progress, each part atomically; the
    /// progress (`state.json`, what [`Checkpoint::exists`] looks for) is written last.
    pub fn save<M: Module>(
        &self,
        model: &M,
        ema: &M,
        optim: &ModuleOptimizer,
        state: &TrainState,
    ) -> Result<()> {
        self.save_module("model", model)?;
        self.save_module("ema", ema)?;
        let optim_bytes = optim.to_record().into_bytes().map_err(rec_err)?;
        self.write_atomic("optim.bpk", &optim_bytes)?;
        let json = serde_json::to_string(state).map_err(|e| Error::Invalid(e.to_string()))?;
        self.write_atomic("state.json", json.as_bytes())
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
