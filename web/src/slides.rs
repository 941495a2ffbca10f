//! Slides: which images are fields of which patient's smear. Each image belongs to one slide;
//! each slide has its own leukocyte differential and its own patient's leukocyte count, so two
//! patients' fields are never counted together. Images opened join the current slide; an image
//! can be moved to another slide until it is signed off. Plain Rust, tested natively.

use crate::session::{parse_wbc_count, ImageRecord, Session, FIRST_SLIDE};
use serde_json::Value;

/// Longest slide label accepted, in characters.
pub const MAX_SLIDE_LABEL: usize = 60;

/// A slide label typed by the user (a specimen or patient number, say): trimmed, not empty,
/// at most [`MAX_SLIDE_LABEL`] characters, no control characters; else a message that says
/// what is wrong.
pub fn parse_slide_label(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("a slide needs a label, e.g. the specimen's number".into());
    }
    if t.chars().count() > MAX_SLIDE_LABEL {
        return Err(format!(
            "a slide label has at most {MAX_SLIDE_LABEL} characters; this one has {}",
            t.chars().count()
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(
            "a slide label cannot hold tabs, line breaks or other control characters".into(),
        );
    }
    Ok(t.to_string())
}

impl Session {
    /// The slide that images opened next join.
    pub fn current_slide(&self) -> &str {
        self.current_slide.as_deref().unwrap_or(FIRST_SLIDE)
    }

    /// The slides: the labels of the images' slides in opening order, then the current slide
    /// if no image is on it yet.
    pub fn slides(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let labels = self.images.iter().map(|i| i.slide.as_str());
        for label in labels.chain([self.current_slide()]) {
            if !out.iter().any(|l| l == label) {
                out.push(label.to_string());
            }
        }
        out
    }

    /// Whether the session's images lie on more than one slide (then lists that mix them name
    /// each cell's slide).
    pub fn shows_slides(&self) -> bool {
        let first = self.images.first().map(|i| &i.slide);
        self.images.iter().any(|i| Some(&i.slide) != first)
    }

    /// The images of slide `slide`, in opening order.
    pub fn slide_images<'a>(&'a self, slide: &'a str) -> impl Iterator<Item = &'a ImageRecord> {
        self.images.iter().filter(move |i| i.slide == slide)
    }

    /// The analysed fields of slide `slide` (images whose cells were found), in opening order:
    /// what its differential and its part of the report count.
    pub fn analysed_fields<'a>(&'a self, slide: &'a str) -> impl Iterator<Item = &'a ImageRecord> {
        self.slide_images(slide).filter(|i| i.findings.is_some())
    }

    /// Make `text` the slide that images opened next join: an existing slide's label adds
    /// fields to that slide, another label starts a new one. Refused, with the reason, for a
    /// bad label ([`parse_slide_label`]).
    pub fn set_current_slide(&mut self, text: &str) -> Result<(), String> {
        self.current_slide = Some(parse_slide_label(text)?);
        Ok(())
    }

    /// Start a new slide for the images opened next, labelled "Slide N" with the first N
    /// above the number of slides that no slide uses yet; returns its label. While the current
    /// slide has no image, it stays the one (no empty slides pile up).
    pub fn new_slide(&mut self) -> String {
        if self.slide_images(self.current_slide()).next().is_none() {
            return self.current_slide().to_string();
        }
        let slides = self.slides();
        let mut n = slides.len() + 1;
        while slides.contains(&format!("Slide {n}")) {
            n += 1;
        }
        let label = format!("Slide {n}");
        self.current_slide = Some(label.clone());
        label
    }

    /// Relabel slide `from` as `to` (its images, its leukocyte count and, if it is the current
    /// slide, the slide images join). Refused, with the reason, for a bad label or one another
    /// slide has (fields of two slides are joined one by one, by [`Session::move_to_slide`]).
    pub fn rename_slide(&mut self, from: &str, to: &str) -> Result<(), String> {
        let to = parse_slide_label(to)?;
        if to == from {
            return Ok(());
        }
        if self.slides().contains(&to) {
            return Err(format!(
                "another slide is labelled \"{to}\": move fields to it one by one instead"
            ));
        }
        for i in self.images.iter_mut().filter(|i| i.slide == from) {
            i.slide = to.clone();
        }
        if let Some(v) = self.wbc_counts.remove(from) {
            self.wbc_counts.insert(to.clone(), v);
        }
        if self.current_slide() == from {
            self.current_slide = Some(to);
        }
        Ok(())
    }

    /// Move image `image` to slide `text` (an existing slide or a new one). Refused, with the
    /// reason, for an unknown image, a bad label, and an image signed off: a sign-off vouches
    /// for the field's place in its slide's count too. A slide left without image and not
    /// current loses its leukocyte count.
    pub fn move_to_slide(&mut self, image: u32, text: &str) -> Result<(), String> {
        let to = parse_slide_label(text)?;
        let img = self
            .image_mut(image)
            .ok_or_else(|| format!("no image {image}"))?;
        if let Some((by, _)) = &img.signed_off {
            return Err(format!(
                "{} was signed off by {by}: its slide is final",
                img.name
            ));
        }
        let from = std::mem::replace(&mut img.slide, to);
        if from != self.current_slide() && self.slide_images(&from).next().is_none() {
            self.wbc_counts.remove(&from);
        }
        Ok(())
    }

    /// The patient's leukocyte count (10^9/L) given for slide `slide`.
    pub fn wbc_count(&self, slide: &str) -> Option<f64> {
        self.wbc_counts.get(slide).copied()
    }

    /// Set (`Some`) or clear (`None`) slide `slide`'s leukocyte count, as read by
    /// [`parse_wbc_count`].
    pub fn set_wbc_count(&mut self, slide: &str, count: Option<f64>) {
        match count {
            Some(v) => self.wbc_counts.insert(slide.to_string(), v),
            None => self.wbc_counts.remove(slide),
        };
    }
}

/// Restore the slide fields of a stored session (`value`) into `session`, whose images are
/// restored already: a bad label or count is dropped and said in `problems`; an image with a
/// bad label joins [`FIRST_SLIDE`]. A session stored before slides existed had one leukocyte
/// count (`wbc_count`) for all its images, which all restore into [`FIRST_SLIDE`]: the count
/// goes with them.
pub fn restore_slides(value: &Value, session: &mut Session, problems: &mut Vec<String>) {
    for (n, img) in session.images.iter_mut().enumerate() {
        if let Err(e) = parse_slide_label(&img.slide) {
            problems.push(format!(
                "stored image {} ({}): slide label dropped ({e}); it is on {FIRST_SLIDE}",
                n + 1,
                img.name
            ));
            img.slide = FIRST_SLIDE.to_string();
        }
    }
    if let Some(c) = value.get("current_slide").filter(|c| !c.is_null()) {
        match c.as_str().map(parse_slide_label) {
            Some(Ok(label)) => session.current_slide = Some(label),
            _ => problems.push(format!("stored current slide {c} dropped")),
        }
    }
    let count = |w: &Value| match w.as_f64().map(|v| parse_wbc_count(&v.to_string())) {
        Some(Ok(Some(v))) => Some(v),
        _ => None,
    };
    if let Some(w) = value.get("wbc_count").filter(|w| !w.is_null()) {
        match count(w) {
            Some(v) => session.set_wbc_count(FIRST_SLIDE, Some(v)),
            None => problems.push(format!("stored leukocyte count {w} dropped")),
        }
    }
    let Some(counts) = value.get("wbc_counts").filter(|c| !c.is_null()) else {
        return;
    };
    let Some(counts) = counts.as_object() else {
        problems.push("stored leukocyte counts dropped: not a table of slides".into());
        return;
    };
    for (slide, w) in counts {
        match (parse_slide_label(slide), count(w)) {
            (Ok(label), Some(v)) => session.set_wbc_count(&label, Some(v)),
            _ => problems.push(format!(
                "stored leukocyte count {w} of slide {slide:?} dropped"
            )),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::session::{leukocyte_differential, restore};

    /// An image of slide `slide`, opened and not analysed.
    pub(crate) fn image(id: u32, slide: &str) -> ImageRecord {
        ImageRecord {
            id,
            name: format!("field{id}.jpg"),
            width: 640,
            height: 480,
            backend: "cpu".into(),
            findings: None,
            cells: Vec::new(),
            signed_off: None,
            slide: slide.into(),
        }
    }

    #[test]
    fn a_label_is_trimmed_and_checked() {
        assert_eq!(
            parse_slide_label("  H-2026-0412 "),
            Ok("H-2026-0412".into())
        );
        assert_eq!(parse_slide_label("Ünïcode ✓"), Ok("Ünïcode ✓".into()));
        for (bad, says) in [
            ("", "needs a label"),
            ("   ", "needs a label"),
            ("a\tb", "control characters"),
            ("a\nb", "control characters"),
        ] {
            let e = parse_slide_label(bad).expect_err(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        assert!(parse_slide_label(&"é".repeat(MAX_SLIDE_LABEL)).is_ok());
        let e = parse_slide_label(&"é".repeat(MAX_SLIDE_LABEL + 1)).expect_err("long");
        assert!(e.contains("at most 60 characters; this one has 61"), "{e}");
    }

    #[test]
    fn images_join_the_current_slide_and_new_slides_get_free_labels() {
        let mut s = Session::default();
        assert_eq!(s.current_slide(), FIRST_SLIDE);
        assert_eq!(s.slides(), [FIRST_SLIDE]);
        // No image on the current slide yet: a new slide is that one, not a second empty one.
        assert_eq!(s.new_slide(), FIRST_SLIDE);
        s.images.push(image(0, FIRST_SLIDE));
        assert_eq!(s.new_slide(), "Slide 2");
        assert_eq!(s.slides(), [FIRST_SLIDE, "Slide 2"]);
        assert_eq!(s.new_slide(), "Slide 2", "still empty");
        s.images.push(image(1, "Slide 2"));
        // A label in use is skipped.
        s.images.push(image(2, "Slide 3"));
        assert_eq!(s.new_slide(), "Slide 4");
        assert!(s.set_current_slide(" P-17 ").is_ok());
        assert_eq!(s.current_slide(), "P-17");
        assert!(s.set_current_slide("").is_err());
        assert_eq!(s.current_slide(), "P-17", "a refused label changes nothing");
        assert_eq!(s.slides(), [FIRST_SLIDE, "Slide 2", "Slide 3", "P-17"]);
        assert_eq!(
            s.slide_images("Slide 2").map(|i| i.id).collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn two_slides_make_two_differentials_each_with_its_own_count() {
        let mut a = image(0, FIRST_SLIDE);
        let mut b = image(1, FIRST_SLIDE);
        let cell = |class: &str| {
            let mut r = crate::session::tests::cell(0, class, "auto", 0.1);
            r.id = format!("x-{class}");
            r
        };
        a.cells = vec![cell("neutrophil"), cell("lymphocyte")];
        b.cells = vec![cell("monocyte")];
        let mut s = Session {
            images: vec![a, b],
            ..Session::default()
        };
        s.set_wbc_count(FIRST_SLIDE, Some(8.0));
        let together = leukocyte_differential(s.slide_images(FIRST_SLIDE));
        assert_eq!(together.leukocytes, 3);
        // Only fields whose cells were found count as analysed.
        assert_eq!(s.analysed_fields(FIRST_SLIDE).count(), 0);
        s.images[1].findings = Some(crate::protocol::ImageFindings {
            wbc: 1,
            rbc_count: 0,
            platelet_count: 0,
            rbc_diameter_px: None,
            rbc_reading_px: None,
            scale_um_per_px: None,
            single_cell: false,
        });
        let ids = |s: &Session, slide| s.analysed_fields(slide).map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(&s, FIRST_SLIDE), [1]);
        // The second field is another patient's: moved to a slide of its own.
        assert!(!s.shows_slides(), "one slide");
        assert_eq!(s.move_to_slide(1, "P-2"), Ok(()));
        assert!(s.shows_slides());
        assert_eq!(
            leukocyte_differential(s.slide_images(FIRST_SLIDE)).leukocytes,
            2
        );
        assert_eq!((ids(&s, FIRST_SLIDE), ids(&s, "P-2")), (vec![], vec![1]));
        let other = leukocyte_differential(s.slide_images("P-2"));
        assert_eq!(other.leukocytes, 1);
        assert_eq!(other.classes[2].class, "monocyte");
        assert_eq!(other.classes[2].count, 1);
        assert_eq!(
            (s.wbc_count(FIRST_SLIDE), s.wbc_count("P-2")),
            (Some(8.0), None)
        );
        // Renamed, the slide keeps its fields and its count; a label in use is refused.
        assert_eq!(s.rename_slide(FIRST_SLIDE, "P-1"), Ok(()));
        assert_eq!(s.images[0].slide, "P-1");
        assert_eq!(s.wbc_count("P-1"), Some(8.0));
        assert_eq!(s.current_slide(), "P-1", "it was the current slide");
        let e = s.rename_slide("P-1", " P-2").expect_err("in use");
        assert!(e.contains("another slide is labelled \"P-2\""), "{e}");
        assert_eq!(s.rename_slide("P-1", "P-1"), Ok(()), "unchanged");
        // Moved back, "P-2" is left empty and, not being current, loses its count.
        s.set_wbc_count("P-2", Some(5.0));
        assert_eq!(s.move_to_slide(1, "P-1"), Ok(()));
        assert_eq!(s.wbc_count("P-2"), None);
        assert_eq!(s.slides(), ["P-1"]);
        assert!(s.move_to_slide(9, "P-1").is_err(), "unknown image");
        assert!(s.move_to_slide(1, "").is_err(), "bad label");
        assert_eq!(s.images[1].slide, "P-1");
    }

    #[test]
    fn a_signed_off_field_stays_on_its_slide() {
        let mut s = Session::default();
        s.images.push(image(0, FIRST_SLIDE));
        s.images[0].signed_off = Some(("Dr A".into(), "2026-12-07T03:00:00Z".into()));
        let e = s.move_to_slide(0, "P-9").expect_err("signed off");
        assert_eq!(e, "field0.jpg was signed off by Dr A: its slide is final");
        assert_eq!(s.images[0].slide, FIRST_SLIDE);
        // Renaming the slide does not change what was counted together: allowed.
        assert_eq!(s.rename_slide(FIRST_SLIDE, "P-9"), Ok(()));
        assert_eq!(s.images[0].slide, "P-9");
    }

    #[test]
    fn slides_and_their_counts_survive_a_restore_and_bad_ones_are_dropped_with_a_word() {
        let mut s = Session {
            images: vec![image(0, "P-1"), image(1, "P-2")],
            ..Session::default()
        };
        s.set_wbc_count("P-1", Some(7.5));
        s.set_current_slide("P-3").expect("label");
        let json = serde_json::to_string(&s).expect("json");
        let (back, problems) = restore(&json);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back, s);

        // Stored before slides existed: every image on the first slide, with the one count.
        let mut old: Value = serde_json::from_str(&json).expect("json");
        for i in old["images"].as_array_mut().expect("images") {
            i.as_object_mut().expect("image").remove("slide");
        }
        let o = old.as_object_mut().expect("session");
        o.remove("wbc_counts");
        o.remove("current_slide");
        o.insert("wbc_count".into(), 6.0.into());
        let (back, problems) = restore(&old.to_string());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back.slides(), [FIRST_SLIDE]);
        assert_eq!(back.wbc_count(FIRST_SLIDE), Some(6.0));

        // Damaged: a bad label, a bad current slide, a bad count and counts not in a table.
        let mut bad: Value = serde_json::from_str(&json).expect("json");
        bad["images"][1]["slide"] = "\u{7}".into();
        bad["current_slide"] = 3.into();
        bad["wbc_counts"]["P-1"] = (-2.0).into();
        let (back, problems) = restore(&bad.to_string());
        assert_eq!(back.images.len(), 2, "no image lost");
        assert_eq!(back.images[1].slide, FIRST_SLIDE);
        assert_eq!(back.current_slide(), FIRST_SLIDE);
        assert_eq!(back.wbc_count("P-1"), None);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("stored image 2 (field1.jpg): slide label dropped"));
        assert_eq!(problems[1], "stored current slide 3 dropped");
        assert_eq!(
            problems[2],
            "stored leukocyte count -2.0 of slide \"P-1\" dropped"
        );
        bad["wbc_counts"] = "x".into();
        let (_, problems) = restore(&bad.to_string());
        assert!(
            problems.iter().any(|p| p.contains("not a table of slides")),
            "{problems:?}"
        );
    }
}
