//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in `model-core`, with a message fit for a user.
#[derive(Debug, Error)]
pub enum Error {
    /// The file is empty.
    #[error("the file is empty (0 bytes)")]
    EmptyFile,
    /// The bytes are not an image format we can read.
    #[error("not a readable image: {0}")]
    NotAnImage(String),
    /// The image header claims a size above the safety limit.
    #[error("image is {width}x{height} pixels, above the limit of {limit} megapixels; downscale it first")]
    TooLarge {
        /// Claimed width.
        width: u32,
        /// Claimed height.
        height: u32,
        /// Limit in megapixels.
        limit: u32,
    },
    /// The image decoded but is too small to hold a cell.
    #[error("image is {width}x{height} pixels, too small to hold a cell (minimum {min}x{min})")]
    TooSmall {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Minimum side.
        min: u32,
    },
    /// The image has no colour channels.
    #[error("grayscale image: CytoLens needs a colour image of a stained smear (the stain colours carry the diagnosis)")]
    Grayscale,
    /// A smear field in which the detector found no white cell.
    #[error("no white cell found in this image")]
    NoWhiteCell,
    /// Weights could not be decoded or do not fit the architecture.
    #[error("model weights: {0}")]
    Weights(String),
    /// A data set file is missing or malformed.
    #[error("data set: {0}")]
    Data(String),
    /// File system error, with the path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Invalid argument.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wrap an I/O error with its path.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
