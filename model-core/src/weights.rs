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
    /// Parse a model card.
    pub fn parse_card(card_json: &str) -> Result<ModelCard> {
        serde_json::from_str(card_json).map_err(|e| Error::Weights(format!("model card: {e}")))
    }

    /// Parse a card and take the weights ([`ModelFiles::new`]).
    pub fn from_parts(card_json: &str, weights: Vec<u8>) -> Result<Self> {
        Self::new(Self::parse_card(card_json)?, weights)
    }

    /// A card and its weights; refuses weights whose SHA-256 differs from the card's (a stale
    /// cache or a damaged download).
    pub fn new(card: ModelCard, weights: Vec<u8>) -> Result<Self> {
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

/// Casts every float parameter to f16.
struct ToHalf;

impl burn::module::ModuleMapper for ToHalf {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::Tensor<D>>,
    ) -> burn::module::Param<burn::Tensor<D>> {
        param.map(|t| t.cast(burn::tensor::DType::F16))
    }
}

/// The same weights stored in half precision (f16): half the bytes. They load into the usual
/// f32 model ([`CellClassifier::from_bytes`] casts on load).
pub fn half_precision(weights: &[u8], card: &ModelCard) -> Result<Vec<u8>> {
    use burn::module::Module;
    let clf = CellClassifier::from_bytes(weights, card.clone(), Device::flex())?;
    let half = clf.model.map(&mut ToHalf);
    let bytes = half
        .into_record()
        .into_bytes()
        .map_err(|e| Error::Weights(e.to_string()))?;
    Ok(bytes.to_vec())
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
    fn half_precision_weights_halve_the_file_and_keep_the_outputs() {
        use burn::module::Module;
        use burn::prelude::*;
        let cfg = DenoiserConfig::new().with_channels(vec![8, 16]);
        let card = ModelCard::uncalibrated(cfg.clone());
        let device = Device::flex();
        let full = cfg
            .init(&device)
            .into_record()
            .into_bytes()
            .expect("record")
            .to_vec();
        let half = half_precision(&full, &card).expect("half");
        assert!(
            half.len() * 10 < full.len() * 6,
            "{} vs {} bytes",
            half.len(),
            full.len()
        );
        let a = CellClassifier::from_bytes(&full, card.clone(), device.clone()).expect("f32");
        let b = CellClassifier::from_bytes(&half, card, device.clone()).expect("f16");
        let n = 2 * 3 * 64 * 64;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [2, 3, 64, 64]), &device);
        let cond = crate::unet::condition(&[Some(1), None], 8, &device);
        let ya = a.model.forward(x.clone(), &[100, 400], cond.clone());
        let yb = b.model.forward(x, &[100, 400], cond);
        let diff: f32 = (ya.clone() - yb).abs().max().into_scalar::<f32>();
        let scale: f32 = ya.abs().max().into_scalar::<f32>();
        assert!(
            diff <= 1e-2 * scale.max(1.0),
            "f16 changed the output by {diff} (scale {scale})"
        );
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
