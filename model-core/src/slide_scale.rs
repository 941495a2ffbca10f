//! One slide, one magnification: a field's red-cell reading against its slide's.
//!
//! The fields of one smear photographed at one magnification share one red-cell size, which
//! sets the scale every cell is cropped at. A field's own reading ([`crate::red_cells`]) is
//! steady when the field holds many whole red cells and can be far off when it holds few or
//! they are smudged: on BCCD, whose 364 fields share a camera and magnification, the middle
//! half read 83-94 px but a tenth read under 60. The median over a slide's fields is steadier;
//! a field whose own reading strays from it by more than [`MAX_DEVIATION`] is worth a look,
//! and the slide's size is the one to offer instead.

use serde::{Deserialize, Serialize};

/// A field's reading this far (relative) from its slide's is flagged: more than the spread of
/// BCCD's middle half (about 6 % either side of the median) and enough to move the classifier
/// (crops 8 % too tight cost about 3 points of accuracy on in-lab cells; `docs/crop-scale.txt`).
pub const MAX_DEVIATION: f32 = 0.2;

/// A slide's size is only a median of at least this many fields' readings.
pub const MIN_FIELDS: usize = 3;

/// The red-cell size of a slide.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlideScale {
    /// Median of the fields' own readings, pixels.
    pub diameter_px: f32,
    /// Fields it is the median of.
    pub fields: usize,
}

/// The slide's red-cell size from its fields' own readings (pixels; readings that are not
/// positive numbers are ignored), or `None` with fewer than [`MIN_FIELDS`] of them.
pub fn slide_scale(readings: &[f32]) -> Option<SlideScale> {
    let mut r: Vec<f32> = readings
        .iter()
        .copied()
        .filter(|d| d.is_finite() && *d > 0.0)
        .collect();
    if r.len() < MIN_FIELDS {
        return None;
    }
    r.sort_by(|a, b| a.total_cmp(b));
    let n = r.len();
    let diameter_px = if n % 2 == 1 {
        r[n / 2]
    } else {
        (r[n / 2 - 1] + r[n / 2]) / 2.0
    };
    Some(SlideScale {
        diameter_px,
        fields: n,
    })
}

impl SlideScale {
    /// How far `reading` lies from the slide's size, relative (-0.34: 34 % smaller), when that
    /// is more than [`MAX_DEVIATION`]; `None` when it agrees or is not a positive number.
    pub fn deviation(&self, reading: f32) -> Option<f32> {
        if !(reading.is_finite() && reading > 0.0) {
            return None;
        }
        let dev = reading / self.diameter_px - 1.0;
        (dev.abs() > MAX_DEVIATION).then_some(dev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_enough_readings() {
        assert_eq!(slide_scale(&[90.0, 88.0]), None);
        assert_eq!(slide_scale(&[90.0, f32::NAN, 0.0, 88.0]), None);
        let s = slide_scale(&[90.0, 60.0, 88.0]).expect("three fields");
        assert_eq!((s.diameter_px, s.fields), (88.0, 3));
        let s = slide_scale(&[90.0, 60.0, 88.0, 94.0]).expect("four fields");
        assert_eq!((s.diameter_px, s.fields), (89.0, 4));
    }

    #[test]
    fn only_a_stray_reading_is_flagged() {
        let s = slide_scale(&[90.0, 60.0, 88.0, 94.0, 92.0]).expect("slide");
        assert_eq!(s.diameter_px, 90.0);
        let low = s.deviation(60.0).expect("60 px is a third off");
        assert!((low + 1.0 / 3.0).abs() < 1e-6, "{low}");
        assert!(s.deviation(115.0).expect("28 % larger") > 0.2);
        assert_eq!(s.deviation(75.0), None, "17 % is within the spread allowed");
        assert_eq!(s.deviation(88.0), None);
        assert_eq!(s.deviation(f32::NAN), None);
        assert_eq!(s.deviation(0.0), None);
    }
}
