//! A decoded image as the worker sends it (drawn by the smear view).

/// A decoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// RGBA bytes.
    pub rgba: Vec<u8>,
}
