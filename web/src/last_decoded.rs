//! The image a reviewer is marking missed cells on, kept decoded between marks: each mark
//! sends the whole file (the page holds files, not pixels), and decoding a camera frame costs
//! more than classifying the one cell it is for.

use std::hash::{DefaultHasher, Hasher};
use std::rc::Rc;

/// One decoded file, recognised by the page's image id and a digest of the bytes, so a file
/// replaced under the same id is decoded again. Holds at most one image: the worker's memory
/// is bounded by the largest image it analyses, not by how many the reviewer marks on.
pub struct LastDecoded<T> {
    kept: Option<(Key, Rc<T>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    id: u32,
    len: usize,
    digest: u64,
}

impl Key {
    fn of(id: u32, bytes: &[u8]) -> Self {
        let mut h = DefaultHasher::new(); // fixed keys: the same bytes give the same digest
        h.write(bytes);
        Key {
            id,
            len: bytes.len(),
            digest: h.finish(),
        }
    }
}

impl<T> Default for LastDecoded<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LastDecoded<T> {
    /// Nothing kept.
    pub const fn new() -> Self {
        LastDecoded { kept: None }
    }

    /// The kept image if it is file `bytes` of image `id`; else `None`, and the kept one is
    /// dropped, so that it is gone before the caller decodes the new one.
    pub fn kept(&mut self, id: u32, bytes: &[u8]) -> Option<Rc<T>> {
        match &self.kept {
            Some((k, v)) if *k == Key::of(id, bytes) => Some(Rc::clone(v)),
            _ => {
                self.kept = None;
                None
            }
        }
    }

    /// Keep `image`, decoded from file `bytes` of image `id`, in place of the last one.
    pub fn keep(&mut self, id: u32, bytes: &[u8], image: T) -> Rc<T> {
        let image = Rc::new(image);
        self.kept = Some((Key::of(id, bytes), Rc::clone(&image)));
        image
    }

    /// Drop the kept image (before an analysis, which decodes an image of its own).
    pub fn forget(&mut self) {
        self.kept = None;
    }

    /// Whether an image is kept.
    pub fn holds(&self) -> bool {
        self.kept.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the worker does: the kept image, else a decode (counted) that is then kept.
    fn get(
        last: &mut LastDecoded<Vec<u8>>,
        id: u32,
        bytes: &[u8],
        calls: &mut usize,
    ) -> Rc<Vec<u8>> {
        last.kept(id, bytes).unwrap_or_else(|| {
            *calls += 1;
            last.keep(id, bytes, bytes.iter().map(|v| v.wrapping_mul(2)).collect())
        })
    }

    #[test]
    fn the_same_file_is_decoded_once_and_another_file_or_id_again() {
        let mut calls = 0;
        let mut last = LastDecoded::new();
        let a = get(&mut last, 1, b"abc", &mut calls);
        let again = get(&mut last, 1, b"abc", &mut calls);
        assert_eq!(calls, 1);
        assert!(Rc::ptr_eq(&a, &again));
        assert_eq!(*a, b"abc".iter().map(|v| v * 2).collect::<Vec<_>>());
        // The same id with other bytes of the same length (a replaced file), and the same
        // bytes under another id, are decoded anew.
        let b = get(&mut last, 1, b"abd", &mut calls);
        assert_eq!(calls, 2);
        assert_eq!(b[2], b'd' * 2);
        get(&mut last, 2, b"abd", &mut calls);
        assert_eq!(calls, 3);
        // Only the last is kept.
        get(&mut last, 1, b"abd", &mut calls);
        assert_eq!(calls, 4);
    }

    #[test]
    fn another_file_drops_the_kept_image_before_its_decoding_and_forget_drops_it() {
        let mut calls = 0;
        let mut last = LastDecoded::new();
        get(&mut last, 1, b"abc", &mut calls);
        // Asked for another file (whose decoding may then fail), nothing is kept any more.
        assert!(last.kept(3, b"xyz").is_none());
        assert!(!last.holds());
        get(&mut last, 1, b"abc", &mut calls);
        assert_eq!(calls, 2);
        last.forget();
        assert!(!last.holds());
        get(&mut last, 1, b"abc", &mut calls);
        assert_eq!(calls, 3);
    }
}
