//! Rings around the crop centre, shared by the spatial experiments (`spatial_features`,
//! `readout_features`).

/// Ring edges as fractions of the half-side (the last ring runs to the corners).
pub const RINGS: [f32; 4] = [0.25, 0.5, 0.75, f32::INFINITY];

/// Ring index of every pixel of a `size * size` crop.
pub fn ring_of(size: usize) -> Vec<usize> {
    let c = (size as f32 - 1.0) / 2.0;
    (0..size * size)
        .map(|p| {
            let (y, x) = ((p / size) as f32 - c, (p % size) as f32 - c);
            let r = (x * x + y * y).sqrt() / (size as f32 / 2.0);
            RINGS.iter().position(|&e| r < e).unwrap_or(RINGS.len() - 1)
        })
        .collect()
}
