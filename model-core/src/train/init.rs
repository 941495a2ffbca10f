//! Starting a run from trained weights (`--init-from`): a run folder or a weights file, carried
//! over to a finer input or a deeper model where the architectures differ.

use super::TrainOptions;
use crate::checkpoint::{load_weights_file, Checkpoint};
use crate::error::{Error, Result};
use crate::unet::{Denoiser, DenoiserConfig};
use burn::prelude::*;
use std::path::Path;

/// The architecture `src` was trained with: a run folder's `options.json`, or the card
/// (`<stem>.json`) beside a weights file. `None` when that file does not exist; any other
/// failure to read it is an error.
pub(super) fn source_architecture(src: &Path) -> Result<Option<DenoiserConfig>> {
    if !src.is_file() {
        if !src.join(TrainOptions::FILE).exists() {
            return Ok(None);
        }
        return Ok(Some(TrainOptions::read(src)?.model));
    }
    let path = src.with_extension("json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let card: crate::diagnosis::ModelCard =
        serde_json::from_str(&text).map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    Ok(Some(card.denoiser))
}

/// Start from the (EMA) weights of a run folder or a weights file; a source trained at a
/// smaller image size with a proportionally smaller patch is carried over to `model`'s input
/// ([`Denoiser::to_finer_input`]), and one with fewer extra blocks is deepened
/// ([`Denoiser::deepen`]).
pub(super) fn init_from(src: &Path, model: &DenoiserConfig, device: &Device) -> Result<Denoiser> {
    let trained = source_architecture(src)?.unwrap_or_else(|| model.clone());
    let load = |arch: &DenoiserConfig| {
        if src.is_file() {
            load_weights_file(arch.init(device), src)
        } else {
            Checkpoint::new(src.join("ckpt")).load_module(arch.init(device), "ema")
        }
    };
    if trained.image_size != model.image_size || trained.patch != model.patch {
        load(&trained)?.to_finer_input(&trained, model)
    } else if trained.extra_blocks != model.extra_blocks {
        load(&trained)?.deepen(&trained, model)
    } else {
        load(model)
    }
}
