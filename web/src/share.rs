//! One smear's cells shared among several compute workers.
//!
//! The worker that detects the cells of an image (its owner) packs every cell's model input and
//! preview into one buffer and sends it to the page; the page cuts it into parts (cell `i`
//! belongs to part `i % parts`), the owner classifies part 0, and each other part goes, with its
//! cells only, to whichever worker is idle next ([`crate::pool`]). A cell's diagnosis does not depend on the cells classified beside it (tested in
//! `model-core/tests/shipped_model.rs`), so the answers are those of one worker. Pure data
//! handling, tested natively.

use serde::{Deserialize, Serialize};

/// Where one shared cell is: its index in the image and its box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharedCell {
    /// Index within the image (the order of detection).
    pub index: usize,
    /// `[x0, y0, x1, y1]` in image pixels.
    pub bbox: [u32; 4],
}

/// The description of a packed buffer of cells: per cell, in order, its model input
/// (`3 * input_size²` little-endian f32, CHW) and then its preview (`preview_size²` RGBA bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedCells {
    /// Side of the model input.
    pub input_size: usize,
    /// Side of the preview.
    pub preview_size: usize,
    /// The cells, in buffer order.
    pub cells: Vec<SharedCell>,
}

/// One cell unpacked from a shared buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpackedCell {
    /// Index and box.
    pub at: SharedCell,
    /// Model input, `[3, input_size, input_size]` flattened (CHW).
    pub input: Vec<f32>,
    /// Preview, `preview_size²` RGBA bytes.
    pub preview_rgba: Vec<u8>,
}

impl SharedCells {
    fn input_len(&self) -> usize {
        3 * self.input_size * self.input_size
    }

    fn preview_len(&self) -> usize {
        4 * self.preview_size * self.preview_size
    }

    /// Bytes one cell takes in the buffer.
    pub fn cell_bytes(&self) -> usize {
        4 * self.input_len() + self.preview_len()
    }

    /// Pack `cells` (each: where it is, model input of `3 * input_size²` values, preview of
    /// `preview_size²` RGBA bytes) into one buffer. A cell of another size is an error.
    pub fn pack<'a>(
        input_size: usize,
        preview_size: usize,
        cells: impl IntoIterator<Item = (SharedCell, &'a [f32], &'a [u8])>,
    ) -> Result<(Self, Vec<u8>), String> {
        let mut shared = Self {
            input_size,
            preview_size,
            cells: Vec::new(),
        };
        let mut bytes = Vec::new();
        for (at, input, preview) in cells {
            if input.len() != shared.input_len() || preview.len() != shared.preview_len() {
                return Err(format!(
                    "cell {} has {} input values and {} preview bytes, not {} and {}",
                    at.index,
                    input.len(),
                    preview.len(),
                    shared.input_len(),
                    shared.preview_len()
                ));
            }
            bytes.extend(input.iter().flat_map(|v| v.to_le_bytes()));
            bytes.extend_from_slice(preview);
            shared.cells.push(at);
        }
        Ok((shared, bytes))
    }

    /// Each cell of the part `part` of `parts` (see [`part_of`]) with its bytes, from a buffer
    /// made by [`SharedCells::pack`]; a buffer of the wrong length is an error.
    fn part_cells<'a>(
        &'a self,
        bytes: &'a [u8],
        part: usize,
        parts: usize,
    ) -> Result<impl Iterator<Item = (SharedCell, &'a [u8])> + 'a, String> {
        let per = self.cell_bytes();
        if bytes.len() != per * self.cells.len() {
            return Err(format!(
                "shared cells: {} bytes for {} cells of {per} bytes",
                bytes.len(),
                self.cells.len()
            ));
        }
        Ok(self
            .cells
            .iter()
            .zip(bytes.chunks_exact(per.max(1)))
            .filter(move |(at, _)| part_of(at.index, parts) == part)
            .map(|(&at, b)| (at, b)))
    }

    /// The cells of part `part` of `parts` (see [`part_of`]) from a buffer made by
    /// [`SharedCells::pack`]; a buffer of the wrong length is an error.
    pub fn unpack(
        &self,
        bytes: &[u8],
        part: usize,
        parts: usize,
    ) -> Result<Vec<UnpackedCell>, String> {
        let input_bytes = 4 * self.input_len();
        Ok(self
            .part_cells(bytes, part, parts)?
            .map(|(at, b)| {
                let (input, preview) = b.split_at(input_bytes);
                UnpackedCell {
                    at,
                    input: input
                        .chunks_exact(4)
                        .map(|q| f32::from_le_bytes([q[0], q[1], q[2], q[3]]))
                        .collect(),
                    preview_rgba: preview.to_vec(),
                }
            })
            .collect())
    }

    /// Only part `part` of `parts` of a buffer made by [`SharedCells::pack`], packed the same
    /// way: what a worker that classifies that part is sent, rather than every cell (unpacking
    /// it for the same part gives the same cells as unpacking the whole buffer).
    pub fn part(&self, bytes: &[u8], part: usize, parts: usize) -> Result<(Self, Vec<u8>), String> {
        let mut shared = Self {
            input_size: self.input_size,
            preview_size: self.preview_size,
            cells: Vec::new(),
        };
        let mut out = Vec::new();
        for (at, b) in self.part_cells(bytes, part, parts)? {
            shared.cells.push(at);
            out.extend_from_slice(b);
        }
        Ok((shared, out))
    }
}

/// The part (of `parts`, at least 1) that classifies cell `index`: every `parts`-th cell, so
/// each part starts with its first cell at once and the parts differ by one cell at most.
pub fn part_of(index: usize, parts: usize) -> usize {
    index % parts.max(1)
}

/// How many of `cells` cells part `part` of `parts` classifies.
pub fn part_len(cells: usize, part: usize, parts: usize) -> usize {
    (0..cells).filter(|&i| part_of(i, parts) == part).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(index: usize, size: usize, preview: usize) -> (SharedCell, Vec<f32>, Vec<u8>) {
        let at = SharedCell {
            index,
            bbox: [index as u32, 1, 2 + index as u32, 3],
        };
        let input = (0..3 * size * size)
            .map(|k| (k as f32 + 0.25) * if index.is_multiple_of(2) { 1.0 } else { -1e-7 })
            .collect();
        let rgba = (0..4 * preview * preview)
            .map(|k| (k + index) as u8)
            .collect();
        (at, input, rgba)
    }

    #[test]
    fn packed_cells_come_back_bit_for_bit_split_into_parts() {
        let cells: Vec<_> = (0..5).map(|i| cell(i, 4, 3)).collect();
        let (shared, bytes) =
            SharedCells::pack(4, 3, cells.iter().map(|(a, i, p)| (*a, &i[..], &p[..])))
                .expect("pack");
        assert_eq!(bytes.len(), 5 * (4 * 48 + 36));
        let mut seen = Vec::new();
        for part in 0..2 {
            for u in shared.unpack(&bytes, part, 2).expect("unpack") {
                let (at, input, rgba) = &cells[u.at.index];
                assert_eq!(u.at, *at);
                assert_eq!(u.input, *input, "f32 values must survive exactly");
                assert_eq!(u.preview_rgba, *rgba);
                assert_eq!(part_of(u.at.index, 2), part);
                seen.push(u.at.index);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3, 4], "every cell in exactly one part");
    }

    #[test]
    fn a_part_alone_holds_just_that_parts_cells() {
        let cells: Vec<_> = (0..5).map(|i| cell(i, 4, 3)).collect();
        let (shared, bytes) =
            SharedCells::pack(4, 3, cells.iter().map(|(a, i, p)| (*a, &i[..], &p[..])))
                .expect("pack");
        for part in 0..2 {
            let (sub, sub_bytes) = shared.part(&bytes, part, 2).expect("part");
            assert_eq!(sub.cells.len(), part_len(5, part, 2));
            assert_eq!(sub_bytes.len(), sub.cells.len() * shared.cell_bytes());
            assert_eq!(
                sub.unpack(&sub_bytes, part, 2).expect("unpack the part"),
                shared.unpack(&bytes, part, 2).expect("unpack the whole")
            );
        }
        assert!(shared.part(&bytes[..10], 0, 2).is_err(), "a short buffer");
    }

    #[test]
    fn a_wrong_size_is_an_error_not_garbage() {
        let (at, input, rgba) = cell(0, 4, 3);
        assert!(SharedCells::pack(5, 3, [(at, &input[..], &rgba[..])]).is_err());
        let (shared, bytes) = SharedCells::pack(4, 3, [(at, &input[..], &rgba[..])]).expect("pack");
        let err = shared.unpack(&bytes[1..], 0, 1).expect_err("short buffer");
        assert!(err.contains("bytes for 1 cells"), "{err}");
    }

    #[test]
    fn parts_take_every_nth_cell_and_differ_by_one_at_most() {
        assert_eq!(part_of(5, 1), 0);
        assert_eq!(part_of(5, 0), 0, "no parts means one");
        assert_eq!(
            (0..3).map(|p| part_len(7, p, 3)).collect::<Vec<_>>(),
            [3, 2, 2]
        );
        assert_eq!(part_len(1, 1, 2), 0);
    }
}
