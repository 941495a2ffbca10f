//! A field's red-cell size against its slide's: the fields of one smear share a magnification,
//! so a field whose cells were cropped at a red-cell size far from the slide's
//! ([`model_core::slide_scale`]) is flagged, with the slide's size offered instead. Plain Rust,
//! tested natively.

use crate::session::Session;
use model_core::slide_scale::{slide_scale, SlideScale};

/// A field sized differently from its slide ([`Session::scale_warning`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleWarning {
    /// Red-cell diameter the field's cells were cropped at, pixels.
    pub used_px: f32,
    /// The slide's red-cell size.
    pub slide: SlideScale,
    /// `used_px` relative to the slide's size (-0.45: 45 % smaller).
    pub deviation: f32,
}

impl ScaleWarning {
    /// What the page and the report say.
    pub fn message(&self) -> String {
        format!(
            "Red cells sized {:.0} px here, {:.0} % {} than on this slide ({:.0} px, the median of {} fields): this field's cells may be cropped at the wrong magnification.",
            self.used_px,
            100.0 * self.deviation.abs(),
            if self.deviation < 0.0 { "smaller" } else { "larger" },
            self.slide.diameter_px,
            self.slide.fields
        )
    }
}

impl Session {
    /// The red-cell size of slide `slide`: the median of its analysed fields' own readings
    /// (single-cell images, classified without it, are left out), once there are enough.
    pub fn slide_scale(&self, slide: &str) -> Option<SlideScale> {
        let readings: Vec<f32> = self
            .analysed_fields(slide)
            .filter_map(|i| i.findings.as_ref())
            .filter(|f| !f.single_cell)
            .filter_map(|f| f.rbc_reading_px)
            .collect();
        slide_scale(&readings)
    }

    /// Whether image `id`'s cells were cropped at a red-cell size far from its slide's.
    pub fn scale_warning(&self, id: u32) -> Option<ScaleWarning> {
        let image = self.image(id)?;
        let findings = image.findings.as_ref().filter(|f| !f.single_cell)?;
        let used_px = findings.rbc_diameter_px?;
        let slide = self.slide_scale(&image.slide)?;
        let deviation = slide.deviation(used_px)?;
        Some(ScaleWarning {
            used_px,
            slide,
            deviation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ImageFindings;
    use crate::session::{ImageRecord, FIRST_SLIDE};

    fn field(id: u32, slide: &str, used: f32, reading: Option<f32>, single: bool) -> ImageRecord {
        let mut image = crate::slides::tests::image(id, slide);
        image.findings = Some(ImageFindings {
            wbc: 1,
            rbc_count: 10,
            platelet_count: 0,
            rbc_diameter_px: Some(used),
            rbc_reading_px: reading,
            scale_um_per_px: Some(7.5 / used),
            single_cell: single,
        });
        image
    }

    #[test]
    fn a_field_read_far_from_its_slide_is_flagged_until_sized_by_it() {
        let mut s = Session {
            images: vec![
                field(0, FIRST_SLIDE, 86.0, Some(86.0), false),
                field(1, FIRST_SLIDE, 48.0, Some(48.0), false),
            ],
            ..Session::default()
        };
        assert_eq!(
            s.slide_scale(FIRST_SLIDE),
            None,
            "two fields are not a slide's size"
        );
        assert_eq!(s.scale_warning(1), None);
        s.images
            .push(field(2, FIRST_SLIDE, 92.0, Some(92.0), false));
        // A single-cell image, another slide's field and a field restored from before the
        // reading was kept do not count.
        s.images.push(field(3, FIRST_SLIDE, 40.0, Some(40.0), true));
        s.images.push(field(4, "P-2", 40.0, Some(40.0), false));
        s.images.push(field(5, FIRST_SLIDE, 40.0, None, false));
        let slide = s.slide_scale(FIRST_SLIDE).expect("three fields");
        assert_eq!((slide.diameter_px, slide.fields), (86.0, 3));
        let w = s.scale_warning(1).expect("48 px against 86");
        assert!((w.deviation - (48.0 / 86.0 - 1.0)).abs() < 1e-6);
        assert_eq!(
            w.message(),
            "Red cells sized 48 px here, 44 % smaller than on this slide (86 px, the median of 3 fields): this field's cells may be cropped at the wrong magnification."
        );
        assert_eq!(s.scale_warning(0), None);
        assert_eq!(s.scale_warning(2), None, "7 % off is within the spread");
        assert_eq!(
            s.scale_warning(3),
            None,
            "a single-cell image is not cropped by it"
        );
        assert_eq!(s.scale_warning(4), None, "P-2 has one field");
        assert!(
            s.scale_warning(5).is_some(),
            "its own reading is unknown, its size is not"
        );
        // Re-analysed at the slide's size: no longer flagged; its reading still counts as read.
        s.images[1]
            .findings
            .as_mut()
            .expect("findings")
            .rbc_diameter_px = Some(86.0);
        assert_eq!(s.scale_warning(1), None);
        assert_eq!(
            s.slide_scale(FIRST_SLIDE).map(|x| x.diameter_px),
            Some(86.0)
        );
        // A size set by hand far from the slide's is flagged as well.
        s.images[0]
            .findings
            .as_mut()
            .expect("findings")
            .rbc_diameter_px = Some(120.0);
        assert!(s.scale_warning(0).expect("120 px").deviation > 0.3);
        assert!(s
            .scale_warning(0)
            .expect("120")
            .message()
            .contains("40 % larger"));
    }
}
