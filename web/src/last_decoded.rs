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

    /// The image of file `bytes` (image `id`): the kept one if it is that file, else
    /// `decode(bytes)`, kept in place of the last one. A failed decode keeps nothing.
    pub fn get_or_decode<E>(
        &mut self,
        id: u32,
        bytes: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Rc<T>, E> {
        let key = Key::of(id, bytes);
        if let Some((k, v)) = &self.kept {
            if *k == key {
                return Ok(Rc::clone(v));
            }
        }
        self.kept = None; // the old image goes before the new one is decoded
        let value = Rc::new(decode(bytes)?);
        self.kept = Some((key, Rc::clone(&value)));
        Ok(value)
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
    use std::cell::Cell;

    fn decoder(calls: &Cell<usize>) -> impl Fn(&[u8]) -> Result<Vec<u8>, String> + '_ {
        move |b: &[u8]| {
            calls.set(calls.get() + 1);
            if b.is_empty() {
                Err("empty".into())
            } else {
                Ok(b.iter().map(|v| v.wrapping_mul(2)).collect())
            }
        }
    }

    #[test]
    fn the_same_file_is_decoded_once_and_another_file_or_id_again() {
        let calls = Cell::new(0);
        let mut last = LastDecoded::new();
        let a = last
            .get_or_decode(1, b"abc", decoder(&calls))
            .expect("decodes");
        let again = last
            .get_or_decode(1, b"abc", decoder(&calls))
            .expect("decodes");
        assert_eq!(calls.get(), 1);
        assert!(Rc::ptr_eq(&a, &again));
        assert_eq!(*a, b"abc".iter().map(|v| v * 2).collect::<Vec<_>>());
        // The same id with other bytes of the same length (a replaced file), and the same
        // bytes under another id, are decoded anew.
        let b = last
            .get_or_decode(1, b"abd", decoder(&calls))
            .expect("decodes");
        assert_eq!(calls.get(), 2);
        assert_eq!(b[2], b'd' * 2);
        last.get_or_decode(2, b"abd", decoder(&calls))
            .expect("decodes");
        assert_eq!(calls.get(), 3);
        // Only the last is kept.
        last.get_or_decode(1, b"abd", decoder(&calls))
            .expect("decodes");
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn a_failed_decode_keeps_nothing_and_forget_drops_the_image() {
        let calls = Cell::new(0);
        let mut last = LastDecoded::new();
        last.get_or_decode(1, b"abc", decoder(&calls))
            .expect("decodes");
        assert_eq!(
            last.get_or_decode(3, b"", decoder(&calls)),
            Err("empty".into())
        );
        assert!(!last.holds());
        last.get_or_decode(1, b"abc", decoder(&calls))
            .expect("decodes");
        assert_eq!(calls.get(), 3);
        last.forget();
        assert!(!last.holds());
        last.get_or_decode(1, b"abc", decoder(&calls))
            .expect("decodes");
        assert_eq!(calls.get(), 4);
    }
}
