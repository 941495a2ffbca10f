//! Training augmentations that respect blood-smear images: the 8 rotations/flips of the square
//! (a cell has no preferred orientation) and a mild colour jitter (stain and illumination vary).

use rand::Rng;

/// Apply one of the 8 dihedral transforms (`code` in 0..8) to a CHW image of side `size`.
pub fn dihedral(src: &[f32], size: usize, code: u8) -> Vec<f32> {
    let n = size * size;
    let mut out = vec![0f32; src.len()];
    let last = size - 1;
    for y in 0..size {
        for x in 0..size {
            let (sx, sy) = match code % 8 {
                0 => (x, y),
                1 => (y, last - x),
                2 => (last - x, last - y),
                3 => (last - y, x),
                4 => (last - x, y),
                5 => (x, last - y),
                6 => (y, x),
                _ => (last - y, last - x),
            };
            for c in 0..3 {
                out[c * n + y * size + x] = src[c * n + sy * size + sx];
            }
        }
    }
    out
}

/// The code of the transform that undoes dihedral transform `code`: the two quarter turns undo
/// each other; the half turn and the four flips undo themselves.
pub fn dihedral_inverse(code: u8) -> u8 {
    match code % 8 {
        1 => 3,
        3 => 1,
        c => c,
    }
}

/// Random dihedral transform plus brightness (+-4%), contrast (+-6%) and per-channel gain
/// (+-3%) jitter, in place on values in [-1, 1].
pub fn augment(src: &[f32], size: usize, rng: &mut impl Rng) -> Vec<f32> {
    let mut img = dihedral(src, size, rng.random_range(0..8));
    let n = size * size;
    let brightness = rng.random_range(-0.08f32..0.08);
    let contrast = rng.random_range(0.94f32..1.06);
    for c in 0..3 {
        let gain = rng.random_range(0.97f32..1.03);
        for v in &mut img[c * n..(c + 1) * n] {
            *v = ((*v * contrast + brightness) * gain).clamp(-1.0, 1.0);
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dihedral_transform_is_undone_by_its_inverse() {
        let size = 5;
        let src: Vec<f32> = (0..3 * size * size).map(|v| v as f32).collect();
        for code in 0..8 {
            let back = dihedral(&dihedral(&src, size, code), size, dihedral_inverse(code));
            assert_eq!(back, src, "code {code}");
        }
    }

    #[test]
    fn dihedral_transforms_are_distinct_permutations() {
        let size = 4;
        let src: Vec<f32> = (0..3 * size * size).map(|v| v as f32).collect();
        let mut seen = Vec::new();
        for code in 0..8 {
            let out = dihedral(&src, size, code);
            let mut sorted = out.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            assert_eq!(sorted, src, "a permutation of the pixels");
            assert!(!seen.contains(&out), "transform {code} repeats another");
            seen.push(out);
        }
        // A rotation by 90 degrees four times is the identity.
        let mut r = src.clone();
        for _ in 0..4 {
            r = dihedral(&r, size, 1);
        }
        assert_eq!(r, src);
    }
}
