//! The review session: images, their cells, the model's answers and the user's edits (kept
//! apart from the model's answer, undoable), the differential count and the exports.
//! Plain Rust, tested natively.

use crate::protocol::{CellResult, ImageFindings};
use crate::slides::restore_slides;
use model_core::differential::Differential;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Labels a reviewer can give besides the model's classes.
pub const NOT_A_WBC: &str = "not a white cell";
/// Label for a cell that cannot be classified.
pub const UNCLASSIFIABLE: &str = "unclassifiable";
/// What a cell counts as while its colours are unlike the calibration cells' (the model's colour
/// gate flagged it) and no reviewer has classified it: the model's class for such a cell is not
/// to be trusted, so it is neither counted nor drawn as that class.
pub use model_core::differential::UNUSUAL_COLOUR;

/// What a key press does in the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Undo the last review edit (`u`, or Ctrl/Cmd+Z).
    Undo,
    /// Give the selected cell this label (see [`label_for_key`]).
    Label(String),
    /// Confirm the model's class for the selected cell (Enter).
    Accept,
    /// Close the report (Escape while it is open).
    CloseReport,
}

/// What had the keyboard focus when a key was pressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Focus {
    /// The page itself, or something that does not take keys.
    #[default]
    Page,
    /// A control that acts on keys of its own (a button, a link, a slider, a check box, the
    /// file picker): Enter or Space work it.
    Control,
    /// A field that takes typed text (an input for text or numbers, a text area, a select,
    /// editable text).
    Text,
}

impl Focus {
    /// The focus kind of an element: its tag name (upper case, as the DOM gives it), its `type`
    /// for an `input`, and whether its text is editable.
    pub fn of(tag: &str, input_type: &str, editable: bool) -> Self {
        match tag {
            _ if editable => Self::Text,
            "TEXTAREA" | "SELECT" => Self::Text,
            "INPUT" => match input_type.to_ascii_lowercase().as_str() {
                "button" | "checkbox" | "color" | "file" | "hidden" | "image" | "radio"
                | "range" | "reset" | "submit" => Self::Control,
                _ => Self::Text,
            },
            "BUTTON" | "A" | "SUMMARY" => Self::Control,
            _ => Self::Page,
        }
    }
}

/// A key press as the page sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyPress<'a> {
    /// `KeyboardEvent.key`.
    pub key: &'a str,
    /// Ctrl held.
    pub ctrl: bool,
    /// Cmd (Meta) held.
    pub meta: bool,
    /// Alt held.
    pub alt: bool,
    /// Auto-repeat of a held key.
    pub repeat: bool,
    /// What had the focus.
    pub focus: Focus,
    /// The report covers the page: no cell under it is reviewed by a key.
    pub report_open: bool,
}

/// The review action of a key press, if any: 1-9 and 0 label the selected cell, Enter confirms
/// the model's class, `u` or Ctrl/Cmd+Z undoes. Typing in a text field (the reviewer's name,
/// the red-cell diameter) never reviews or undoes; Enter on a button or a link is that
/// control's (a slider keeps the digits working); a held key does not repeat a review (each
/// review moves on to the next cell); other shortcuts with Ctrl, Cmd or Alt are the browser's.
/// While the report is open, Escape closes it and no key reviews or undoes (the cells are
/// hidden under it).
pub fn key_action(k: KeyPress, classes: &[String]) -> Option<KeyAction> {
    if k.report_open {
        return (k.key == "Escape" && !k.repeat).then_some(KeyAction::CloseReport);
    }
    if k.focus == Focus::Text || k.repeat {
        return None;
    }
    match (k.key, k.ctrl || k.meta, k.alt) {
        ("z", true, false) | ("u", false, false) => Some(KeyAction::Undo),
        ("Enter", false, false) => (k.focus == Focus::Page).then_some(KeyAction::Accept),
        (key, false, false) => label_for_key(key, classes).map(KeyAction::Label),
        _ => None,
    }
}

/// The review label bound to a key: 1-8 the classes, 9 unclassifiable, 0 not a white cell.
pub fn label_for_key(key: &str, classes: &[String]) -> Option<String> {
    match key {
        "0" => Some(NOT_A_WBC.into()),
        "9" => Some(UNCLASSIFIABLE.into()),
        k => k
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=8).contains(n))
            .and_then(|n| classes.get(n - 1).cloned()),
    }
}

/// The model used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256 of the weights.
    pub sha256: String,
}

/// One cell: the model's answer and the reviewer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// Stable id within the session (`image-index`).
    pub id: String,
    /// The model's answer.
    pub result: CellResult,
    /// The reviewer's class, if changed.
    pub reviewed_class: Option<String>,
    /// When the cell was last reviewed (ISO time; undone with the review), for the audit of a
    /// smear's reviews in the exports; `None` in sessions kept before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<String>,
    /// Who gave the latest review: the session's [`Session::reviewer`] then (`None`: nobody
    /// was named, or a session kept before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    /// Marked by the reviewer where the detector found nothing ([`Session::add_refusal`]),
    /// rather than found by the detector.
    #[serde(default)]
    pub added: bool,
}

impl CellRecord {
    /// The class that counts: the reviewer's if any, else [`UNUSUAL_COLOUR`] for a cell the
    /// colour gate flagged, else the model's.
    pub fn final_class(&self) -> &str {
        match &self.reviewed_class {
            Some(reviewed) => reviewed,
            None if self.result.unusual_colour => UNUSUAL_COLOUR,
            None => &self.result.class,
        }
    }

    /// Whether the cell waits for a reviewer: triaged `review` or `anomaly`, not yet reviewed.
    pub fn awaits_review(&self) -> bool {
        self.result.triage != "auto" && self.reviewed_class.is_none()
    }

    /// One line for the report: id, the class that counts, the model's class where that differs,
    /// the model's confidence, the triage and whether a reviewer has seen the cell.
    pub fn caption(&self) -> String {
        let r = &self.result;
        let shown = self.final_class();
        let model = if shown == r.class {
            String::new()
        } else {
            format!("model: {}, ", r.class)
        };
        let reviewed = match (&self.reviewed_class, &self.reviewed_by) {
            (Some(_), Some(by)) => format!("reviewed by {by}"),
            (Some(_), None) => "reviewed".into(),
            (None, _) => "not reviewed".into(),
        };
        let added = if self.added {
            ", added by the reviewer"
        } else {
            ""
        };
        format!(
            "{} {shown} ({model}{:.0} %, {}, {reviewed}{added})",
            self.id,
            100.0 * r.confidence,
            r.triage
        )
    }
}

/// One image of the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Page-side id.
    pub id: u32,
    /// File name.
    pub name: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Backend that analysed it.
    pub backend: String,
    /// Detector findings.
    pub findings: Option<ImageFindings>,
    /// Classified cells.
    pub cells: Vec<CellRecord>,
    /// Who signed the smear off, and when (ISO time), if anyone.
    pub signed_off: Option<(String, String)>,
    /// The slide (one patient's smear) this image is a field of: its cells count in that
    /// slide's differential only ([`crate::slides`]). Sessions stored before slides existed
    /// restore into [`FIRST_SLIDE`].
    #[serde(default = "first_slide")]
    pub slide: String,
}

/// The session-wide id of cell `index` of image `image`.
pub fn cell_id(image: u32, index: usize) -> String {
    format!("{image}-{index}")
}

/// The slide images join when none was named.
pub const FIRST_SLIDE: &str = "Slide 1";

fn first_slide() -> String {
    FIRST_SLIDE.to_string()
}

impl ImageRecord {
    /// Add a classified cell (`added`: marked by the reviewer) in the order of the cells'
    /// indices, whatever order they arrive in (workers sharing a smear send its cells out of
    /// order); its id ([`cell_id`]).
    pub fn insert_cell(&mut self, result: CellResult, added: bool) -> String {
        let id = cell_id(self.id, result.index);
        let at = self
            .cells
            .partition_point(|c| c.result.index < result.index);
        self.cells.insert(
            at,
            CellRecord {
                id: id.clone(),
                result,
                reviewed_class: None,
                reviewed_at: None,
                reviewed_by: None,
                added,
            },
        );
        id
    }

    /// The cells the detector found that are classified (not those the reviewer added).
    pub fn found_cells(&self) -> usize {
        self.cells.iter().filter(|c| !c.added).count()
    }

    /// The index the next cell a reviewer adds takes: after every cell the detector found and
    /// every cell added so far, so that cell ids (`image-index`) stay unique.
    pub fn next_cell_index(&self) -> usize {
        let found = self.findings.as_ref().map_or(0, |f| f.wbc);
        let after = self.cells.iter().map(|c| c.result.index + 1).max();
        after.unwrap_or(0).max(found)
    }

    /// The detector's findings in one line ([`ImageFindings::summary`]), with the cells the
    /// reviewer added; `None` before the cells are found.
    pub fn findings_line(&self) -> Option<String> {
        let f = self.findings.as_ref()?;
        Some(match self.cells.len() - self.found_cells() {
            0 => f.summary(),
            n => format!("{} + {n} added by the reviewer", f.summary()),
        })
    }

    /// Cells that wait for a reviewer ([`CellRecord::awaits_review`]).
    pub fn awaiting_review(&self) -> usize {
        self.cells.iter().filter(|c| c.awaits_review()).count()
    }

    /// Why the smear cannot be signed off yet, if it cannot: its analysis has not classified
    /// every white cell it found (still running, cancelled or failed), or cells still await
    /// review. A sign-off says that every flagged cell of a complete analysis has been seen.
    pub fn sign_off_blocker(&self) -> Option<String> {
        let Some(f) = &self.findings else {
            return Some("the analysis has not found the cells yet".into());
        };
        let found = self.found_cells();
        if found < f.wbc {
            return Some(format!(
                "{found} of {} white cells classified: wait for the analysis to end, or \
                 re-analyse the smear if it was cancelled",
                f.wbc
            ));
        }
        match self.awaiting_review() {
            0 => None,
            1 => Some("1 cell awaits review (see the review queue)".into()),
            n => Some(format!("{n} cells await review (see the review queue)")),
        }
    }
}

/// One undoable edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// Image id.
    pub image: u32,
    /// Cell id.
    pub cell: String,
    /// Reviewed class before the edit.
    pub before: Option<String>,
    /// Review time before the edit.
    #[serde(default)]
    pub before_at: Option<String>,
    /// Reviewer before the edit.
    #[serde(default)]
    pub before_by: Option<String>,
}

/// The whole session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Images in opening order.
    pub images: Vec<ImageRecord>,
    /// Undo stack.
    pub undo: Vec<Edit>,
    /// Model in use.
    pub model: Option<ModelInfo>,
    /// The slide that images opened next join (`None`: [`FIRST_SLIDE`]); see
    /// [`Session::current_slide`].
    #[serde(default)]
    pub current_slide: Option<String>,
    /// Each slide's patient's leukocyte count (10^9/L, from a haematology analyser), where the
    /// user gave it: that slide's differential then gives absolute counts
    /// ([`parse_wbc_count`]).
    #[serde(default)]
    pub wbc_counts: BTreeMap<String, f64>,
    /// Who reviews now (named once for the session, [`Session::set_reviewer`]): recorded with
    /// each review as [`CellRecord::reviewed_by`] and offered as the sign-off's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
}

/// The largest leukocyte count accepted (10^9/L): above the highest counts seen in leukaemia.
pub const MAX_WBC_COUNT: f64 = 1000.0;

/// A leukocyte count typed by the user, in 10^9/L: `Ok(None)` for an empty field, a number
/// above 0 and at most [`MAX_WBC_COUNT`] (a decimal comma is read as a point), else a message
/// that says what is wrong.
pub fn parse_wbc_count(text: &str) -> Result<Option<f64>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let v: f64 = t.replace(',', ".").parse().map_err(|_| {
        format!("\"{t}\" is not a number: give the leukocyte count in 10^9/L, e.g. 7.5")
    })?;
    if !(v > 0.0 && v <= MAX_WBC_COUNT) {
        return Err(format!(
            "{t} × 10^9/L is not a leukocyte count: give a number above 0 and at most {MAX_WBC_COUNT}"
        ));
    }
    Ok(Some(v))
}

impl Session {
    /// Image by id.
    pub fn image(&self, id: u32) -> Option<&ImageRecord> {
        self.images.iter().find(|i| i.id == id)
    }

    /// A cell by image id and cell id.
    pub fn cell(&self, image: u32, cell: &str) -> Option<&CellRecord> {
        self.image(image)?.cells.iter().find(|c| c.id == cell)
    }

    /// Mutable image by id.
    pub fn image_mut(&mut self, id: u32) -> Option<&mut ImageRecord> {
        self.images.iter_mut().find(|i| i.id == id)
    }

    /// Set the reviewer's class of a cell (`None` restores the model's) at `when` (ISO time,
    /// the review's time in the exports), by the session's [`Session::reviewer`]; undoable. Refused (false) for an unknown cell and for
    /// a cell of a signed-off smear, whose reviews are final.
    pub fn reclassify(
        &mut self,
        image: u32,
        cell: &str,
        class: Option<String>,
        when: &str,
    ) -> bool {
        let by = self.reviewer.clone();
        let Some(c) = self
            .image_mut(image)
            .filter(|i| i.signed_off.is_none())
            .and_then(|i| i.cells.iter_mut().find(|c| c.id == cell))
        else {
            return false;
        };
        let before = std::mem::replace(&mut c.reviewed_class, class);
        let before_at = c.reviewed_at.replace(when.to_string());
        let before_by = std::mem::replace(&mut c.reviewed_by, by);
        self.undo.push(Edit {
            image,
            cell: cell.to_string(),
            before,
            before_at,
            before_by,
        });
        true
    }

    /// Sign smear `image` off as `who` at `when` (ISO time). Refused, with the reason, for an
    /// unknown or already signed smear and while [`ImageRecord::sign_off_blocker`] says why not.
    /// Its reviews become final: its edits leave the undo history, and it cannot be reviewed
    /// again (re-analysing it, which replaces its cells, clears the sign-off).
    pub fn sign_off(&mut self, image: u32, who: &str, when: &str) -> Result<(), String> {
        let who =
            crate::reviewer::parse_reviewer(who)?.ok_or("a sign-off needs the reviewer's name")?;
        let img = self
            .image_mut(image)
            .ok_or_else(|| format!("no image {image}"))?;
        if let Some((by, at)) = &img.signed_off {
            return Err(format!("already signed off by {by} at {at}"));
        }
        if let Some(why) = img.sign_off_blocker() {
            return Err(why);
        }
        img.signed_off = Some((who, when.to_string()));
        self.undo.retain(|e| e.image != image);
        Ok(())
    }

    /// Why the reviewer cannot add a missed white cell to `image` now, if they cannot: the
    /// analysis has not found the cells yet (the red-cell size, which sets the crop, comes
    /// with them), the image is a single-cell image (its one cell is the image), or the smear
    /// is signed off (its count is final). `None`: a cell may be added, at the red-cell
    /// diameter the detector used, with index [`ImageRecord::next_cell_index`].
    pub fn add_refusal(&self, image: u32) -> Option<String> {
        let Some(img) = self.image(image) else {
            return Some(format!("no image {image}"));
        };
        if let Some((by, at)) = &img.signed_off {
            return Some(format!(
                "signed off by {by} at {at}: its cells are final (re-analyse it to start again)"
            ));
        }
        match &img.findings {
            None => Some("wait until the analysis has found the cells".into()),
            Some(f) if f.single_cell => {
                Some("a single-cell image holds one cell: the image itself".into())
            }
            Some(f) if f.rbc_diameter_px.is_none_or(|d| d <= 0.0) => {
                Some("the red-cell size is unknown: set the diameter and re-analyse".into())
            }
            Some(_) => None,
        }
    }

    /// Remove a cell the reviewer added (a mistaken mark), with its edits. Refused, with the
    /// reason, for a cell the detector found (review it as "not a white cell" instead) and for
    /// a cell of a signed-off smear.
    pub fn remove_added(&mut self, image: u32, cell: &str) -> Result<(), String> {
        let img = self
            .image_mut(image)
            .ok_or_else(|| format!("no image {image}"))?;
        if let Some((by, at)) = &img.signed_off {
            return Err(format!("signed off by {by} at {at}: its cells are final"));
        }
        let at = img
            .cells
            .iter()
            .position(|c| c.id == cell)
            .ok_or_else(|| format!("no cell {cell}"))?;
        if !img.cells[at].added {
            return Err(
                "the detector found this cell: review it as \"not a white cell\" if it is none"
                    .into(),
            );
        }
        img.cells.remove(at);
        self.undo.retain(|e| !(e.image == image && e.cell == cell));
        Ok(())
    }

    /// Undo the last edit; the cell it restored (image id, cell id), `None` when there was no
    /// edit left.
    pub fn undo_last(&mut self) -> Option<(u32, String)> {
        let e = self.undo.pop()?;
        if let Some(c) = self
            .image_mut(e.image)
            .and_then(|i| i.cells.iter_mut().find(|c| c.id == e.cell))
        {
            c.reviewed_class = e.before;
            c.reviewed_at = e.before_at;
            c.reviewed_by = e.before_by;
        }
        Some((e.image, e.cell))
    }

    /// Review a cell (as [`Session::reclassify`]) and say which cell to show next: for a cell
    /// of the review queue, the one after it in the queue (wrapping round to the first still
    /// waiting), so a reviewer works through the queue with one key per cell; `None` for a cell
    /// outside the queue, or when no other cell waits.
    pub fn review(
        &mut self,
        image: u32,
        cell: &str,
        class: Option<String>,
        when: &str,
    ) -> Option<(u32, String)> {
        let queue = self.review_queue();
        let at = queue.iter().position(|(i, c)| *i == image && c == cell);
        if !self.reclassify(image, cell, class, when) {
            return None;
        }
        // Only this cell changed, so the others wait in the same order.
        let at = at?;
        queue[at + 1..].iter().chain(&queue[..at]).next().cloned()
    }

    /// Cells triaged `review` or `anomaly` and not yet reviewed, most uncertain first.
    pub fn review_queue(&self) -> Vec<(u32, String)> {
        let mut q: Vec<(f32, u32, String)> = self
            .images
            .iter()
            .flat_map(|i| i.cells.iter().map(move |c| (i.id, c)))
            .filter(|(_, c)| c.awaits_review())
            .map(|(i, c)| {
                // Anomalies first, then by uncertainty.
                let key = c.result.uncertainty
                    + if c.result.triage == "anomaly" {
                        10.0
                    } else {
                        0.0
                    };
                (key, i, c.id.clone())
            })
            .collect();
        q.sort_by(|a, b| b.0.total_cmp(&a.0));
        q.into_iter().map(|(_, i, c)| (i, c)).collect()
    }
}

/// Differential count of an image: final class to count, white cells only.
pub fn differential(image: &ImageRecord) -> BTreeMap<String, usize> {
    let mut d = BTreeMap::new();
    for c in &image.cells {
        let class = c.final_class();
        if class != NOT_A_WBC {
            *d.entry(class.to_string()).or_insert(0) += 1;
        }
    }
    d
}

/// The leukocyte differential of the cells of `images` together ([`Differential`]): each
/// cell counted as its [`CellRecord::final_class`], cells that are not white cells left out.
/// Several fields of one smear make one count, as at the microscope.
pub fn leukocyte_differential<'a>(
    images: impl IntoIterator<Item = &'a ImageRecord>,
) -> Differential {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for image in images {
        for (class, n) in differential(image) {
            *counts.entry(class).or_insert(0) += n;
        }
    }
    Differential::of_counts(counts.iter().map(|(k, v)| (k.as_str(), *v)))
}

/// The JSON export of one image of `session` (schema in the README), with the session's model,
/// the image's slide and that slide's patient's leukocyte count, if given.
pub fn export_json(session: &Session, image: &ImageRecord) -> Value {
    let model = session.model.as_ref();
    let cells: Vec<Value> = image
        .cells
        .iter()
        .map(|c| {
            let probs: serde_json::Map<String, Value> = c
                .result
                .probs
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            json!({
                "id": c.id, "bbox": c.result.bbox, "class": c.result.class, "probs": probs,
                "confidence": c.result.confidence, "uncertainty": c.result.uncertainty,
                "anomaly": c.result.anomaly, "triage": c.result.triage,
                "triage_reason": c.result.triage_reason,
                "reviewed_class": c.reviewed_class, "reviewed_at": c.reviewed_at,
                "reviewed_by": c.reviewed_by,
                "evals": c.result.evals,
                "unusual_colour": c.result.unusual_colour, "colour": c.result.colour,
                "out_of_focus": c.result.out_of_focus, "sharpness": c.result.sharpness,
                "counted_as": c.final_class(), "added": c.added,
            })
        })
        .collect();
    let f = image.findings.as_ref();
    json!({
        "image": image.name, "width": image.width, "height": image.height, "backend": image.backend,
        "model": model.map(|m| json!({"name": m.name, "version": m.version, "sha256": m.sha256})),
        "scale_um_per_px": f.and_then(|f| f.scale_um_per_px),
        "rbc_diameter_px": f.and_then(|f| f.rbc_diameter_px),
        "rbc_reading_px": f.and_then(|f| f.rbc_reading_px),
        "slide_rbc_diameter_px": session.slide_scale(&image.slide).map(|s| s.diameter_px),
        "scale_warning": session.scale_warning(image.id).map(|w| w.message()),
        "rbc_count": f.map(|f| f.rbc_count), "platelet_count": f.map(|f| f.platelet_count),
        "cells": cells, "differential": differential(image),
        "leukocyte_differential": leukocyte_differential([image]),
        "slide": image.slide, "wbc_count": session.wbc_count(&image.slide),
        "signed_off": image.signed_off.as_ref().map(|(who, when)| json!({"by": who, "at": when})),
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV of every cell of every image, one row per cell; columns match the JSON cell fields.
pub fn export_csv(session: &Session, classes: &[String]) -> String {
    let mut out = String::from(
        "image,id,x0,y0,x1,y1,class,confidence,uncertainty,anomaly,triage,reviewed_class,evals",
    );
    for c in classes {
        out.push_str(&format!(",p_{}", csv_field(c)));
    }
    out.push_str(
        ",unusual_colour,counted_as,slide,added,triage_reason,reviewed_at,reviewed_by,out_of_focus\n",
    );
    for img in &session.images {
        for c in &img.cells {
            let r = &c.result;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{:.6},{:.6},{:.4},{},{},{}",
                csv_field(&img.name),
                c.id,
                r.bbox[0],
                r.bbox[1],
                r.bbox[2],
                r.bbox[3],
                csv_field(&r.class),
                r.confidence,
                r.uncertainty,
                r.anomaly,
                r.triage,
                csv_field(c.reviewed_class.as_deref().unwrap_or("")),
                r.evals
            ));
            for class in classes {
                let p = r
                    .probs
                    .iter()
                    .find(|(k, _)| k == class)
                    .map_or(0.0, |(_, p)| *p);
                out.push_str(&format!(",{p:.6}"));
            }
            out.push_str(if r.unusual_colour { ",1," } else { ",0," });
            out.push_str(&csv_field(c.final_class()));
            out.push(',');
            out.push_str(&csv_field(&img.slide));
            out.push_str(if c.added { ",1," } else { ",0," });
            out.push_str(&csv_field(&r.triage_reason));
            out.push(',');
            out.push_str(&csv_field(c.reviewed_at.as_deref().unwrap_or("")));
            out.push(',');
            out.push_str(&csv_field(c.reviewed_by.as_deref().unwrap_or("")));
            out.push_str(if r.out_of_focus { ",1\n" } else { ",0\n" });
        }
    }
    out
}

/// Restore a stored session, keeping every image that parses and reporting the others.
/// The stored form is the JSON of [`Session`]; a damaged image record loses only that image.
pub fn restore(json: &str) -> (Session, Vec<String>) {
    let mut problems = Vec::new();
    let value: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            return (
                Session::default(),
                vec![format!(
                    "stored session is unreadable ({e}); starting afresh"
                )],
            )
        }
    };
    let mut session = Session::default();
    if let Some(m) = value.get("model").filter(|m| !m.is_null()) {
        match serde_json::from_value::<ModelInfo>(m.clone()) {
            Ok(m) => session.model = Some(m),
            Err(e) => problems.push(format!("stored model info dropped: {e}")),
        }
    }
    for (i, img) in value
        .get("images")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match serde_json::from_value::<ImageRecord>(img) {
            Ok(r) => session.images.push(r),
            Err(e) => problems.push(format!("stored image {} could not be restored: {e}", i + 1)),
        }
    }
    restore_slides(&value, &mut session, &mut problems);
    crate::reviewer::restore_reviewer(&value, &mut session, &mut problems);
    // Edits that refer to a restored cell stay undoable; the others are dropped.
    for e in value
        .get("undo")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if let Ok(edit) = serde_json::from_value::<Edit>(e) {
            if session
                .image(edit.image)
                .is_some_and(|i| i.cells.iter().any(|c| c.id == edit.cell))
            {
                session.undo.push(edit);
            }
        }
    }
    (session, problems)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The time of the tests' reviews.
    const NOW: &str = "2026-12-07T20:00:00.000Z";

    #[test]
    fn a_review_records_its_time_for_the_exports_and_undo_restores_the_one_before() {
        let mut s = session();
        let later = "2026-12-07T20:05:00.000Z";
        assert!(s.reclassify(0, "0-1", Some("lymphocyte".into()), NOW));
        assert!(s.reclassify(0, "0-1", Some("monocyte".into()), later));
        let at = |s: &Session| s.images[0].cells[1].reviewed_at.clone();
        assert_eq!(at(&s).as_deref(), Some(later));
        let j = export_json(&s, &s.images[0]);
        assert_eq!(j["cells"][1]["reviewed_at"], later);
        assert_eq!(j["cells"][0]["reviewed_at"], Value::Null, "not reviewed");
        let csv = export_csv(&s, &[]);
        assert!(csv
            .lines()
            .nth(2)
            .expect("row")
            .ends_with(&format!(",{later},,0")));
        s.undo_last();
        assert_eq!(
            at(&s).as_deref(),
            Some(NOW),
            "undo restores the earlier review's time"
        );
        s.undo_last();
        assert_eq!(at(&s), None);
        // A session kept before reviews had times restores without them.
        let mut old = serde_json::to_value(&s).expect("json");
        old["undo"] = serde_json::json!([{ "image": 0, "cell": "0-1", "before": null }]);
        let (back, problems) = restore(&old.to_string());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back.undo[0].before_at, None);
    }

    /// A cell of image 0 with the model's `class`, `triage` and uncertainty `unc`.
    pub(crate) fn cell(i: usize, class: &str, triage: &str, unc: f32) -> CellRecord {
        CellRecord {
            id: format!("0-{i}"),
            result: CellResult {
                index: i,
                bbox: [1, 2, 3, 4],
                class: class.into(),
                probs: vec![(class.into(), 0.9), ("other".into(), 0.1)],
                confidence: 0.9,
                uncertainty: unc,
                anomaly: 0.5,
                triage: triage.into(),
                triage_reason: format!("because of the test's {triage}"),
                runner_up: "other".into(),
                evals: 30,
                counterfactual: vec![],
                disagreement: vec![],
                map_size: 0,
                colour: None,
                unusual_colour: false,
                sharpness: None,
                out_of_focus: false,
            },
            reviewed_class: None,
            reviewed_at: None,
            reviewed_by: None,
            added: false,
        }
    }

    pub(crate) fn session() -> Session {
        Session {
            images: vec![ImageRecord {
                id: 0,
                name: "a,b.jpg".into(),
                width: 640,
                height: 480,
                backend: "cpu".into(),
                findings: None,
                cells: vec![
                    cell(0, "neutrophil", "auto", 0.1),
                    cell(1, "monocyte", "review", 0.5),
                    cell(2, "ig", "anomaly", 0.2),
                    cell(3, "lymphocyte", "review", 0.7),
                ],
                signed_off: None,
                slide: FIRST_SLIDE.into(),
            }],
            ..Session::default()
        }
    }

    #[test]
    fn edits_are_separate_from_the_model_and_undoable() {
        let mut s = session();
        assert!(s.reclassify(0, "0-1", Some("lymphocyte".into()), NOW));
        assert!(s.reclassify(0, "0-0", Some(NOT_A_WBC.into()), NOW));
        let img = &s.images[0];
        assert_eq!(img.cells[1].result.class, "monocyte", "model answer kept");
        assert_eq!(img.cells[1].final_class(), "lymphocyte");
        let d = differential(img);
        assert_eq!(d.get("lymphocyte"), Some(&2));
        assert_eq!(d.get("neutrophil"), None, "not-a-white-cell is not counted");
        assert_eq!(
            s.undo_last(),
            Some((0, "0-0".into())),
            "the cell it restored"
        );
        assert_eq!(differential(&s.images[0]).get("neutrophil"), Some(&1));
        assert_eq!(s.undo_last(), Some((0, "0-1".into())));
        assert_eq!(s.images[0].cells[1].reviewed_class, None);
        assert_eq!(s.undo_last(), None);
        assert!(!s.reclassify(0, "9-9", None, NOW), "unknown cell");
    }

    #[test]
    fn the_fields_of_a_smear_make_one_leukocyte_differential() {
        let mut s = session();
        let mut second = s.images[0].clone();
        second.id = 1;
        second.cells = vec![
            cell(0, "neutrophil", "auto", 0.1),
            cell(1, "erythroblast", "auto", 0.1),
            cell(2, "platelet", "review", 0.4),
            cell(3, "neutrophil", "review", 0.4),
        ];
        second.cells[3].result.unusual_colour = true;
        s.images.push(second);
        assert!(s.reclassify(0, "0-3", Some(NOT_A_WBC.into()), NOW));
        let d = leukocyte_differential(&s.images);
        // Neutrophil 2, monocyte 1, ig 1: the reviewer's "not a white cell", the nucleated red
        // cell, the platelet and the cell of unusual colour are not leukocytes counted.
        assert_eq!(d.leukocytes, 4);
        let count = |class: &str| d.classes.iter().find(|c| c.class == class).map(|c| c.count);
        assert_eq!(count("neutrophil"), Some(2));
        assert_eq!(count("lymphocyte"), Some(0));
        assert_eq!(count("ig"), Some(1));
        assert_eq!(d.nucleated_red, 1);
        assert_eq!(d.nucleated_red_per_100, Some(25.0));
        assert_eq!(d.not_counted.get("platelet"), Some(&1));
        assert_eq!(d.not_counted.get(UNUSUAL_COLOUR), Some(&1));
        assert_eq!(
            d.not_counted.get(NOT_A_WBC),
            None,
            "not a white cell: not counted at all"
        );
        let one = leukocyte_differential(&s.images[..1]);
        assert_eq!(one.leukocytes, 3, "the first field alone");
        let doc = export_json(&s, &s.images[1]);
        assert_eq!(doc["leukocyte_differential"]["leukocytes"], 1);
        assert_eq!(
            doc["leukocyte_differential"]["nucleated_red_per_100"],
            100.0
        );
        assert_eq!(
            doc["leukocyte_differential"]["classes"][0]["class"],
            "neutrophil"
        );
        assert!(doc["wbc_count"].is_null(), "no count given");
        assert_eq!(doc["slide"], FIRST_SLIDE);
        s.set_wbc_count(FIRST_SLIDE, Some(6.5));
        assert_eq!(export_json(&s, &s.images[1])["wbc_count"], 6.5);
        s.move_to_slide(1, "P-2").expect("moved");
        let doc = export_json(&s, &s.images[1]);
        assert_eq!(
            (doc["slide"].as_str(), doc["wbc_count"].as_f64()),
            (Some("P-2"), None)
        );
    }

    #[test]
    fn a_leukocyte_count_is_read_checked_and_kept() {
        assert_eq!(parse_wbc_count(" 7.5 "), Ok(Some(7.5)));
        assert_eq!(parse_wbc_count("7,5"), Ok(Some(7.5)), "a decimal comma");
        assert_eq!(parse_wbc_count(""), Ok(None), "cleared");
        for bad in ["abc", "0", "-3", "1e9", "NaN", "inf"] {
            let e = parse_wbc_count(bad).expect_err(bad);
            assert!(e.contains(bad) || e.contains("not a number"), "{bad}: {e}");
        }
        let mut s = session();
        s.set_wbc_count(FIRST_SLIDE, Some(7.5));
        let json = serde_json::to_string(&s).expect("json");
        let (back, problems) = restore(&json);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back.wbc_count(FIRST_SLIDE), Some(7.5));
        // Stored before the count existed: none; stored out of range (in the one count of a
        // session stored before slides existed): dropped, said so.
        let mut v: Value = serde_json::from_str(&json).expect("json");
        v.as_object_mut().expect("session").remove("wbc_counts");
        let (old, problems) = restore(&v.to_string());
        assert_eq!((old.wbc_count(FIRST_SLIDE), problems.len()), (None, 0));
        v["wbc_count"] = (-1).into();
        let (bad, problems) = restore(&v.to_string());
        assert_eq!(bad.wbc_count(FIRST_SLIDE), None);
        assert_eq!(problems, ["stored leukocyte count -1 dropped"]);
        assert_eq!(bad.images.len(), 1, "the rest restored");
    }

    #[test]
    fn a_cell_of_unusual_colour_counts_as_such_until_reviewed() {
        let mut s = session();
        s.images[0].cells[2].result.unusual_colour = true;
        let img = &s.images[0];
        assert_eq!(img.cells[2].final_class(), UNUSUAL_COLOUR);
        assert_eq!(
            img.cells[2].result.class, "ig",
            "the model's answer is kept"
        );
        let d = differential(img);
        assert_eq!(d.get(UNUSUAL_COLOUR), Some(&1));
        assert_eq!(d.get("ig"), None, "the untrusted class is not counted");
        assert_eq!(d.values().sum::<usize>(), 4, "still a white cell");
        let doc = export_json(&s, img);
        assert_eq!(doc["differential"][UNUSUAL_COLOUR], 1);
        assert_eq!(doc["cells"][2]["class"], "ig");
        assert_eq!(doc["cells"][2]["counted_as"], UNUSUAL_COLOUR);
        assert_eq!(doc["cells"][1]["counted_as"], "monocyte");
        let csv = export_csv(&s, &["ig".to_string()]);
        let row = csv.lines().nth(3).expect("the third cell's row");
        assert!(
            row.ends_with(",1,unusual colour,Slide 1,0,because of the test's anomaly,,,0"),
            "{row}"
        );
        // A reviewer's class counts; undoing it brings the flag back.
        assert!(s.reclassify(0, "0-2", Some("basophil".into()), NOW));
        assert_eq!(differential(&s.images[0]).get("basophil"), Some(&1));
        assert_eq!(differential(&s.images[0]).get(UNUSUAL_COLOUR), None);
        assert_eq!(
            s.images[0].cells[2].caption(),
            "0-2 basophil (model: ig, 90 %, anomaly, reviewed)"
        );
        assert!(s.undo_last().is_some());
        assert_eq!(s.images[0].cells[2].final_class(), UNUSUAL_COLOUR);
        assert_eq!(
            s.images[0].cells[2].caption(),
            "0-2 unusual colour (model: ig, 90 %, anomaly, not reviewed)"
        );
        assert_eq!(
            s.images[0].cells[1].caption(),
            "0-1 monocyte (90 %, review, not reviewed)"
        );
    }

    #[test]
    fn a_smear_is_signed_off_only_when_complete_and_reviewed_and_is_final_then() {
        let mut s = session();
        s.images[0].findings = Some(ImageFindings {
            wbc: 5,
            rbc_count: 100,
            platelet_count: 10,
            rbc_diameter_px: Some(80.0),
            rbc_reading_px: Some(80.0),
            scale_um_per_px: Some(0.09),
            single_cell: false,
        });
        let when = "2026-12-06T20:00:00Z";
        // 4 of 5 cells: running, cancelled or failed.
        let err = s.sign_off(0, "Dr A", when).expect_err("incomplete");
        assert!(err.starts_with("4 of 5 white cells classified"), "{err}");
        s.images[0].findings.as_mut().expect("findings").wbc = 4;
        assert_eq!(
            s.sign_off(0, "Dr A", when),
            Err("3 cells await review (see the review queue)".into())
        );
        for c in ["0-1", "0-2"] {
            assert!(s.reclassify(0, c, Some("lymphocyte".into()), NOW));
        }
        assert!(s.images[0]
            .sign_off_blocker()
            .expect("one left")
            .starts_with("1 cell awaits"));
        assert!(s.reclassify(0, "0-3", Some("monocyte".into()), NOW));
        assert_eq!(s.images[0].sign_off_blocker(), None);
        assert!(s.sign_off(0, "  ", when).is_err(), "a name is needed");
        assert_eq!(s.sign_off(0, " Dr A ", when), Ok(()));
        assert_eq!(s.images[0].signed_off, Some(("Dr A".into(), when.into())));
        // Final: no more reviews, nothing of it to undo, no second sign-off.
        assert!(!s.reclassify(0, "0-0", Some("basophil".into()), NOW));
        assert_eq!(s.review(0, "0-0", Some("basophil".into()), NOW), None);
        assert_eq!(s.images[0].cells[0].reviewed_class, None);
        assert_eq!(s.undo_last(), None, "its edits left the undo history");
        assert_eq!(
            s.images[0].cells[3].reviewed_class.as_deref(),
            Some("monocyte")
        );
        assert!(s
            .sign_off(0, "Dr B", when)
            .expect_err("twice")
            .starts_with("already signed off by Dr A"));
        assert!(s.sign_off(7, "Dr A", when).is_err(), "unknown image");
        let mut fresh = session();
        assert_eq!(
            fresh.images[0].sign_off_blocker().as_deref(),
            Some("the analysis has not found the cells yet")
        );
        assert!(fresh.sign_off(0, "Dr A", when).is_err());
    }

    #[test]
    fn a_missed_cell_is_added_counted_and_removable_until_sign_off() {
        let mut s = session();
        assert_eq!(
            s.add_refusal(0).as_deref(),
            Some("wait until the analysis has found the cells")
        );
        let findings = ImageFindings {
            wbc: 4,
            rbc_count: 100,
            platelet_count: 10,
            rbc_diameter_px: Some(80.0),
            rbc_reading_px: Some(80.0),
            scale_um_per_px: Some(0.09),
            single_cell: false,
        };
        s.images[0].findings = Some(findings.clone());
        assert_eq!(s.add_refusal(0), None);
        assert!(s.add_refusal(9).is_some(), "unknown image");
        // The index follows the detected cells, also while some are not classified yet; the
        // cells stay in index order whatever order they come in.
        let late = s.images[0].cells.split_off(2);
        assert_eq!(s.images[0].next_cell_index(), 4);
        let added = cell(4, "basophil", "auto", 0.1).result;
        assert_eq!(s.images[0].insert_cell(added, true), "0-4");
        assert_eq!(s.images[0].next_cell_index(), 5);
        assert_eq!(
            s.images[0].insert_cell(late[1].result.clone(), false),
            "0-3"
        );
        let order: Vec<&str> = s.images[0].cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(order, ["0-0", "0-1", "0-3", "0-4"]);
        assert!(s.images[0].cells[3].added && !s.images[0].cells[2].added);
        s.images[0].cells.remove(2);
        // An added cell does not stand in for a detected one that is not classified.
        assert!(s.images[0]
            .sign_off_blocker()
            .expect("incomplete")
            .starts_with("2 of 4 white cells classified"));
        assert_eq!(differential(&s.images[0]).get("basophil"), Some(&1));
        assert!(s.images[0]
            .findings_line()
            .expect("found")
            .ends_with(" platelets, 0.090 µm/px + 1 added by the reviewer"));
        assert!(s.images[0].cells[2]
            .caption()
            .ends_with("added by the reviewer)"));
        let j = export_json(&s, &s.images[0]);
        assert_eq!(j["cells"][2]["added"], json!(true));
        assert_eq!(j["cells"][0]["added"], json!(false));
        let csv = export_csv(&s, &[]);
        let row: Vec<&str> = csv.lines().nth(3).expect("row").split(',').collect();
        assert_eq!(row[row.len() - 5], "1", "added: {row:?}");
        // A mistaken mark goes, with its edits; a detected cell is reviewed, not removed.
        assert!(s.reclassify(0, "0-4", Some("eosinophil".into()), NOW));
        assert!(s.reclassify(0, "0-0", Some("monocyte".into()), NOW));
        let refused = s.remove_added(0, "0-0").expect_err("detected");
        assert!(refused.contains("not a white cell"), "{refused}");
        assert_eq!(s.remove_added(0, "0-4"), Ok(()));
        assert!(!s.images[0]
            .findings_line()
            .expect("found")
            .contains("added"));
        assert_eq!(s.images[0].cells.len(), 2);
        assert_eq!(s.undo.len(), 1, "the removed cell's edit left the history");
        assert!(s.remove_added(0, "0-4").is_err(), "gone");
        // A single-cell image holds its one cell; a signed-off smear is final.
        s.images[0].findings = Some(ImageFindings {
            single_cell: true,
            ..findings.clone()
        });
        assert!(s.add_refusal(0).expect("single").contains("single-cell"));
        s.images[0].findings = Some(findings);
        s.images[0].signed_off = Some(("Dr A".into(), "now".into()));
        assert!(s
            .add_refusal(0)
            .expect("signed")
            .starts_with("signed off by Dr A"));
        let mut again = cell(5, "basophil", "auto", 0.1);
        again.added = true;
        s.images[0].cells.push(again);
        assert!(s.remove_added(0, "0-5").is_err(), "final after sign-off");
        // Sessions stored before cells could be added restore as detected cells.
        let old = serde_json::to_string(&session())
            .expect("json")
            .replace(",\"added\":false", "");
        assert!(!old.contains("added"));
        let (restored, problems) = restore(&old);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(restored.images[0].cells.iter().all(|c| !c.added));
    }

    #[test]
    fn a_review_moves_on_to_the_next_cell_of_the_queue() {
        // Queue: 0-2 (anomaly), 0-3, 0-1.
        let mut s = session();
        let lymph = || Some("lymphocyte".to_string());
        assert_eq!(s.review(0, "0-3", lymph(), NOW), Some((0, "0-1".into())));
        assert_eq!(s.images[0].cells[3].reviewed_class, lymph(), "reviewed");
        assert_eq!(
            s.review(0, "0-1", lymph(), NOW),
            Some((0, "0-2".into())),
            "round to the first still waiting"
        );
        assert_eq!(s.review(0, "0-2", lymph(), NOW), None, "the queue is empty");
        // A cell outside the queue (auto, or already reviewed) stays selected.
        let mut s = session();
        assert_eq!(s.review(0, "0-0", lymph(), NOW), None);
        assert_eq!(s.images[0].cells[0].reviewed_class, lymph());
        assert_eq!(s.review(0, "9-9", lymph(), NOW), None, "unknown cell");
        assert_eq!(s.undo.len(), 1, "an unknown cell is not an edit");
    }

    #[test]
    fn keys_review_only_outside_text_fields_and_once_per_press() {
        let classes: Vec<String> = ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte"]
            .map(String::from)
            .to_vec();
        let press = |key| KeyPress {
            key,
            ..KeyPress::default()
        };
        assert_eq!(
            key_action(press("5"), &classes),
            Some(KeyAction::Label("lymphocyte".into()))
        );
        assert_eq!(key_action(press("u"), &classes), Some(KeyAction::Undo));
        let ctrl_z = KeyPress {
            ctrl: true,
            ..press("z")
        };
        assert_eq!(key_action(ctrl_z, &classes), Some(KeyAction::Undo));
        assert_eq!(
            key_action(
                KeyPress {
                    meta: true,
                    ..press("z")
                },
                &classes
            ),
            Some(KeyAction::Undo)
        );
        assert_eq!(
            key_action(press("Enter"), &classes),
            Some(KeyAction::Accept)
        );
        let text = |k: KeyPress<'static>| KeyPress {
            focus: Focus::Text,
            ..k
        };
        let control = |k: KeyPress<'static>| KeyPress {
            focus: Focus::Control,
            ..k
        };
        // On a slider or a button, digits still review; Enter is the control's own.
        assert_eq!(
            key_action(control(press("5")), &classes),
            Some(KeyAction::Label("lymphocyte".into()))
        );
        // Typing a name or a diameter, holding a key, or a browser shortcut: nothing.
        for k in [
            text(press("5")),
            text(press("u")),
            text(ctrl_z),
            text(press("Enter")),
            control(press("Enter")),
            KeyPress {
                repeat: true,
                ..press("5")
            },
            KeyPress {
                repeat: true,
                ..press("Enter")
            },
            KeyPress {
                ctrl: true,
                ..press("5")
            },
            KeyPress {
                alt: true,
                ..press("1")
            },
            KeyPress {
                ctrl: true,
                ..press("u")
            },
            press("z"),
            press("x"),
            press("Escape"),
        ] {
            assert_eq!(key_action(k, &classes), None, "{k:?}");
        }
        // With the report open: Escape closes it, from anywhere; nothing reviews or undoes.
        let over = |k: KeyPress<'static>| KeyPress {
            report_open: true,
            ..k
        };
        for k in [
            press("Escape"),
            control(press("Escape")),
            text(press("Escape")),
        ] {
            assert_eq!(key_action(over(k), &classes), Some(KeyAction::CloseReport));
        }
        for k in [
            press("5"),
            press("u"),
            ctrl_z,
            press("Enter"),
            control(press("5")),
            KeyPress {
                repeat: true,
                ..press("Escape")
            },
        ] {
            assert_eq!(key_action(over(k), &classes), None, "{k:?}");
        }
    }

    #[test]
    fn the_focus_kind_of_an_element() {
        for (tag, ty, editable, want) in [
            ("INPUT", "text", false, Focus::Text),
            ("INPUT", "", false, Focus::Text),
            ("INPUT", "number", false, Focus::Text),
            ("TEXTAREA", "", false, Focus::Text),
            ("SELECT", "", false, Focus::Text),
            ("DIV", "", true, Focus::Text),
            ("INPUT", "range", false, Focus::Control),
            ("INPUT", "FILE", false, Focus::Control),
            ("BUTTON", "", false, Focus::Control),
            ("A", "", false, Focus::Control),
            ("DIV", "", false, Focus::Page),
            ("BODY", "", false, Focus::Page),
        ] {
            assert_eq!(Focus::of(tag, ty, editable), want, "{tag} {ty} {editable}");
        }
    }

    #[test]
    fn review_queue_puts_anomalies_then_the_most_uncertain_first() {
        let mut s = session();
        assert_eq!(
            s.review_queue()
                .iter()
                .map(|(_, c)| c.as_str())
                .collect::<Vec<_>>(),
            ["0-2", "0-3", "0-1"]
        );
        s.reclassify(0, "0-3", Some("lymphocyte".into()), NOW);
        assert_eq!(s.review_queue().len(), 2, "reviewed cells leave the queue");
    }

    #[test]
    fn restore_keeps_what_is_valid_and_reports_the_rest() {
        let mut s = session();
        s.reclassify(0, "0-1", Some("lymphocyte".into()), NOW);
        let mut second = s.images[0].clone();
        second.id = 1;
        s.images.push(second);
        let json = serde_json::to_string(&s).expect("json");
        let (back, problems) = restore(&json);
        assert_eq!(back, s);
        assert!(problems.is_empty());
        // Damage the second image only.
        let mut v: Value = serde_json::from_str(&json).expect("json");
        v["images"][1]["cells"] = json!("garbage");
        let (partial, problems) = restore(&v.to_string());
        assert_eq!(partial.images.len(), 1);
        assert_eq!(partial.images[0], s.images[0]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("image 2"));
        let (empty, problems) = restore("{not json");
        assert!(empty.images.is_empty() && problems.len() == 1);
    }

    #[test]
    fn restore_never_panics_on_random_bytes() {
        // A property test: thousands of corruptions of a valid session restore without a
        // panic, and never invent an image that was not stored.
        let json = serde_json::to_string(&session())
            .expect("json")
            .into_bytes();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // CYTOLENS_FUZZ_SCALE=N runs N times as many cases (a longer fuzzing session).
        let scale: usize = std::env::var("CYTOLENS_FUZZ_SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        for _ in 0..3000 * scale {
            let mut b = json.clone();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = (next() & 0xff) as u8;
            }
            let cut = (next() as usize) % (b.len() + 1);
            b.truncate(cut.max(b.len() / 2));
            let (s, _) = restore(&String::from_utf8_lossy(&b));
            assert!(s.images.len() <= 1);
        }
    }

    #[test]
    fn keys_map_to_labels() {
        let classes: Vec<String> = ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(label_for_key("1", &classes).as_deref(), Some("a"));
        assert_eq!(label_for_key("8", &classes).as_deref(), Some("h"));
        assert_eq!(
            label_for_key("9", &classes).as_deref(),
            Some(UNCLASSIFIABLE)
        );
        assert_eq!(label_for_key("0", &classes).as_deref(), Some(NOT_A_WBC));
        assert_eq!(label_for_key("x", &classes), None);
    }

    #[test]
    fn exports_follow_the_schema() {
        let s = session();
        let j = export_json(&s, &s.images[0]);
        for key in [
            "image",
            "width",
            "height",
            "backend",
            "model",
            "scale_um_per_px",
            "rbc_diameter_px",
            "rbc_reading_px",
            "slide_rbc_diameter_px",
            "scale_warning",
            "rbc_count",
            "platelet_count",
            "cells",
            "differential",
            "leukocyte_differential",
            "slide",
            "wbc_count",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
        let c = &j["cells"][0];
        for key in [
            "id",
            "bbox",
            "class",
            "probs",
            "confidence",
            "uncertainty",
            "anomaly",
            "triage",
            "triage_reason",
            "reviewed_class",
            "reviewed_at",
            "reviewed_by",
            "out_of_focus",
            "evals",
            "unusual_colour",
            "counted_as",
            "added",
        ] {
            assert!(c.get(key).is_some(), "cell missing {key}");
        }
        let csv = export_csv(&s, &["neutrophil".into(), "other".into()]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].ends_with(
            ",p_neutrophil,p_other,unusual_colour,counted_as,slide,added,triage_reason,reviewed_at,\
             reviewed_by,out_of_focus"
        ));
        assert!(
            lines[1].ends_with(&format!(
                ",0,neutrophil,Slide 1,0,because of the test's {},,,0",
                s.images[0].cells[0].result.triage
            )),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].starts_with("\"a,b.jpg\",0-0,1,2,3,4,neutrophil,0.900000"),
            "{}",
            lines[1]
        );
        assert_eq!(
            lines[0].split(',').count(),
            lines[1].split(',').count() - 1,
            "quoted name holds a comma"
        );
    }
}
