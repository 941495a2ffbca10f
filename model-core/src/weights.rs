//! Shipped model files: `<name>.json` (the [`ModelCard`]) beside `<name>.bpk` (burnpack weights).

use crate::diagnosis::ModelCard;
use crate::engine::CellClassifier;
use crate::error::{Error, Result};
use burn::prelude::Device;
use sha2::{Digest, Sha256};

/// File stem of the shipped diffusion model.
pub const MODEL_STEM: &str = "cytolens-diffusion";

/// A model's card and weight bytes, as fetched or read from disk.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// Parsed card.
    pub card: ModelCard,
    /// Burnpack bytes.
    pub weights: Vec<u8>,
}

impl ModelFiles {
    /// Parse a card and take the weights.
    pub fn from_parts(card_json: &str, weights: Vec<u8>) -> Result<Self> {
        let card: ModelCard = serde_json::from_str(card_json)
            .map_err(|e| Error::Weights(format!("model card: {e}")))?;
        Ok(Self { card, weights })
    }

    /// SHA-256 of the weights, hex.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(&self.weights))
    }

    /// Build the classifier on `device`.
    pub fn classifier(&self, device: Device) -> Result<CellClassifier> {
        CellClassifier::from_bytes(&self.weights, self.card.clone(), device)
    }

    /// Read `<dir>/<stem>.json` and `<dir>/<stem>.bpk`.
    #[cfg(feature = "native")]
    pub fn read(dir: &std::path::Path, stem: &str) -> Result<Self> {
        let card_path = dir.join(format!("{stem}.json"));
        let w_path = dir.join(format!("{stem}.bpk"));
        let card = std::fs::read_to_string(&card_path).map_err(|e| Error::io(&card_path, e))?;
        let weights = std::fs::read(&w_path).map_err(|e| Error::io(&w_path, e))?;
        Self::from_parts(&card, weights)
    }

    /// Write both files.
    #[cfg(feature = "native")]
    pub fn write(&self, dir: &std::path::Path, stem: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let card =
            serde_json::to_string_pretty(&self.card).map_err(|e| Error::Weights(e.to_string()))?;
        let card_path = dir.join(format!("{stem}.json"));
        std::fs::write(&card_path, card).map_err(|e| Error::io(&card_path, e))?;
        let w_path = dir.join(format!("{stem}.bpk"));
        std::fs::write(&w_path, &self.weights).map_err(|e| Error::io(&w_path, e))
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
