//! A decoded image as the worker sends it (drawn by the smear view).

use std::sync::Arc;

/// A decoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// RGBA bytes, shared: the page's list of entries is cloned on every change, and copying
    /// every image's pixels each time made opening a batch quadratic.
    pub rgba: Arc<[u8]>,
}
