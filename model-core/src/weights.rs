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
    /// Parse a card and take the weights; refuses weights whose SHA-256 differs from the
    /// card's (a stale cache or a damaged download).
    pub fn from_parts(card_json: &str, weights: Vec<u8>) -> Result<Self> {
        let card: ModelCard = serde_json::from_str(card_json)
            .map_err(|e| Error::Weights(format!("model card: {e}")))?;
        let files = Self { card, weights };
        if let Some(expected) = &files.card.weights_sha256 {
            let actual = files.sha256();
            if &actual != expected {
                return Err(Error::Weights(format!(
                    "the weights do not match their card (sha256 {actual}, card says {expected}): \
                     stale cache or damaged download"
                )));
            }
        }
        Ok(files)
    }

    /// File name of the weights for the browser: keyed by their hash when the card has it, so a
    /// new model is never served from an old cache.
    pub fn weights_url(card: &ModelCard, stem: &str) -> String {
        match &card.weights_sha256 {
            Some(h) => format!("{stem}.bpk?sha256={h}"),
            None => format!("{stem}.bpk"),
        }
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

    /// Write both files; the card records the weights' SHA-256.
    #[cfg(feature = "native")]
    pub fn write(&self, dir: &std::path::Path, stem: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let card = ModelCard {
            weights_sha256: Some(self.sha256()),
            ..self.card.clone()
        };
        let card =
            serde_json::to_string_pretty(&card).map_err(|e| Error::Weights(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unet::DenoiserConfig;

    fn card(hash: Option<String>) -> String {
        let mut card = ModelCard::uncalibrated(DenoiserConfig::new());
        card.weights_sha256 = hash;
        serde_json::to_string(&card).expect("card json")
    }

    #[test]
    fn weights_must_match_the_card_hash() {
        let weights = b"some weight bytes".to_vec();
        let hash = hex(&Sha256::digest(&weights));
        let ok = ModelFiles::from_parts(&card(Some(hash.clone())), weights.clone()).expect("match");
        assert_eq!(
            ModelFiles::weights_url(&ok.card, MODEL_STEM),
            format!("cytolens-diffusion.bpk?sha256={hash}")
        );
        let stale = ModelFiles::from_parts(&card(Some(hash)), b"other bytes".to_vec());
        match stale {
            Err(Error::Weights(m)) => assert!(m.contains("do not match"), "{m}"),
            other => panic!("stale weights accepted: {other:?}"),
        }
        // A card without a hash (older files) still loads, under the plain name.
        let old = ModelFiles::from_parts(&card(None), weights).expect("no hash");
        assert_eq!(
            ModelFiles::weights_url(&old.card, MODEL_STEM),
            "cytolens-diffusion.bpk"
        );
    }
}
