//! Messages between the page and the compute worker. Each message is a JS array
//! `[json, bytes?]`: the JSON below plus an optional transferable byte buffer.

use crate::share::SharedCells;
use serde::{Deserialize, Serialize};

/// Page to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Request {
    /// Find the compute backend: WebGPU when an adapter exists and `prefer_gpu`, else CPU.
    Init {
        /// Use WebGPU if the browser offers an adapter.
        prefer_gpu: bool,
    },
    /// Decode the attached file bytes and send the RGBA pixels back.
    Decode {
        /// Page-side id of the image.
        id: u32,
        /// File name, for messages.
        name: String,
    },
    /// Run a small burn forward pass on the CPU and, if available, on WebGPU; compare them.
    SelfTest,
    /// Detect and classify every white cell of the attached image.
    Analyze {
        /// Page-side id of the image.
        id: u32,
        /// File name.
        name: String,
        /// Red-cell diameter in pixels set by the user (else estimated).
        rbc_diameter_px: Option<f32>,
    },
    /// The page's answer to [`Response::Share`]: the image's owner classifies part 0 of
    /// `parts` (every `parts`-th cell, from the first); idle workers take the other parts.
    Plan {
        /// Page-side id of the image.
        id: u32,
        /// Parts the cells are split into (1: the owner classifies them all).
        parts: usize,
    },
    /// Classify part `part` of `parts` of an image's cells, shared by the worker that detected
    /// them; the packed cells ([`SharedCells`]) attached.
    ClassifyPart {
        /// Page-side id of the image.
        id: u32,
        /// File name, for messages.
        name: String,
        /// This worker's part.
        part: usize,
        /// Parts in all.
        parts: usize,
        /// What the attached buffer holds.
        cells: SharedCells,
    },
    /// Classify a white cell the reviewer marked where the detector found none: the cell
    /// centred on `centre` of the attached image file, cropped at `rbc_diameter_px` as the
    /// detected cells were. Answered by [`Response::CellAdded`] or [`Response::AddFailed`],
    /// apart from the image's analysis (it neither waits for it nor counts in its progress).
    AddCell {
        /// Page-side id of the image.
        id: u32,
        /// The cell's index within the image (after the detected cells).
        index: usize,
        /// `[x, y]` in image pixels.
        centre: [u32; 2],
        /// Red-cell diameter the image's cells were cropped at, pixels.
        rbc_diameter_px: f32,
    },
    /// Stop the analysis of image `id` after the current round (or, if it is still queued,
    /// before it starts); other images are not affected.
    Cancel {
        /// Page-side id of the image.
        id: u32,
    },
}

/// One classified white cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Index within the image.
    pub index: usize,
    /// `[x0, y0, x1, y1]` in image pixels.
    pub bbox: [u32; 4],
    /// Predicted class name.
    pub class: String,
    /// Class name to calibrated probability, in model order.
    pub probs: Vec<(String, f32)>,
    /// Probability of the predicted class.
    pub confidence: f32,
    /// Normalised entropy, 0 to 1.
    pub uncertainty: f32,
    /// Anomaly z-score (higher = less like any training class).
    pub anomaly: f32,
    /// `auto`, `review` or `anomaly`.
    pub triage: String,
    /// Why: the deciding figure and the threshold it was held against
    /// ([`model_core::triage_reason::triage_reason`]); empty in sessions kept before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub triage_reason: String,
    /// Second most probable class.
    pub runner_up: String,
    /// Denoiser evaluations spent.
    pub evals: usize,
    /// Counterfactual map (runner-up minus predicted error), `map_size`², row-major.
    pub counterfactual: Vec<f32>,
    /// Disagreement across classes, `map_size`², row-major.
    pub disagreement: Vec<f32>,
    /// Side of the maps.
    pub map_size: usize,
    /// The colour gate's score (largest standardised colour moment against the val cells'),
    /// when the model has a gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<f32>,
    /// The crop's colours lie outside the val cells' (another stain, lab or camera): triaged
    /// `anomaly`, and its class is not to be trusted.
    #[serde(default)]
    pub unusual_colour: bool,
    /// The focus gate's sharpness of the crop (log-variance of its Laplacian), when the model
    /// has a gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f32>,
    /// The crop is blurrier than the val cells (out of focus, or too few pixels per cell):
    /// never auto-accepted.
    #[serde(default)]
    pub out_of_focus: bool,
}

/// Smear-level findings of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFindings {
    /// White cells found.
    pub wbc: usize,
    /// Red cells counted.
    pub rbc_count: usize,
    /// Platelets counted.
    pub platelet_count: usize,
    /// Red-cell diameter used, pixels.
    pub rbc_diameter_px: Option<f32>,
    /// The field's own red-cell reading, pixels, whatever diameter was used (sessions stored
    /// before it was kept have none).
    #[serde(default)]
    pub rbc_reading_px: Option<f32>,
    /// Scale, micrometres per pixel.
    pub scale_um_per_px: Option<f32>,
    /// Single-cell image rather than a field.
    pub single_cell: bool,
}

impl ImageFindings {
    /// One line for the page and the report: counts, scale, single-cell flag.
    pub fn summary(&self) -> String {
        format!(
            "{} white cells, {} red cells, {} platelets{}{}",
            self.wbc,
            self.rbc_count,
            self.platelet_count,
            self.scale_um_per_px
                .map(|s| format!(", {s:.3} µm/px"))
                .unwrap_or_default(),
            if self.single_cell {
                " (single-cell image)"
            } else {
                ""
            }
        )
    }
}

/// Worker to page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Response {
    /// The worker's handler is installed; requests sent before this would be lost, so the
    /// page holds them until it arrives.
    Ready,
    /// The backend in use.
    Backend {
        /// `"webgpu"` or `"cpu"`.
        backend: String,
        /// Human-readable detail (adapter found or why the CPU is used).
        detail: String,
        /// Whether a WebGPU adapter exists at all (so the page can offer a switch).
        webgpu_available: bool,
    },
    /// A decoded image; RGBA bytes attached.
    Decoded {
        /// Page-side id.
        id: u32,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// What was converted to make the image 8-bit RGB (transparency, bit depth, rotation).
        #[serde(default)]
        notes: Vec<String>,
    },
    /// Something failed for one image (others are unaffected).
    Failed {
        /// Page-side id.
        id: u32,
        /// File name.
        name: String,
        /// Message for the user.
        message: String,
    },
    /// Result of the backend self-test.
    SelfTest {
        /// Milliseconds of the CPU forward pass.
        cpu_ms: f64,
        /// Milliseconds of the WebGPU forward pass (first run, includes shader compilation).
        gpu_ms: Option<f64>,
        /// Largest absolute difference between CPU and WebGPU outputs.
        max_abs_diff: Option<f32>,
        /// Output elements compared.
        elements: usize,
    },
    /// The model in use.
    Model {
        /// Name.
        name: String,
        /// Version.
        version: String,
        /// SHA-256 of the weights.
        sha256: String,
    },
    /// Detection finished for an image; classification follows.
    Found {
        /// Page-side id.
        id: u32,
        /// What was found.
        findings: ImageFindings,
    },
    /// The cells of an image, found on the CPU, ready to share with idle workers; the packed
    /// cells ([`SharedCells`]) attached. The worker waits for the page's [`Request::Plan`].
    Share {
        /// Page-side id.
        id: u32,
        /// File name.
        name: String,
        /// What the attached buffer holds.
        cells: SharedCells,
    },
    /// Progress of the classification of an image (of one worker's part of it, when shared;
    /// the pool merges the parts before the page sees them).
    Progress {
        /// Page-side id.
        id: u32,
        /// Cells finished.
        done: usize,
        /// Cells in all.
        total: usize,
        /// Throughput so far.
        cells_per_second: f64,
    },
    /// One classified cell; its 128x128 RGBA crop attached.
    Cell {
        /// Page-side id.
        id: u32,
        /// The result.
        cell: CellResult,
    },
    /// The diagnosis of a cell the reviewer marked ([`Request::AddCell`]); its 128x128 RGBA
    /// crop attached.
    CellAdded {
        /// Page-side id.
        id: u32,
        /// The result (its index the one requested).
        cell: CellResult,
    },
    /// A marked cell could not be classified; the image and its other cells are unaffected.
    AddFailed {
        /// Page-side id.
        id: u32,
        /// The index requested.
        index: usize,
        /// Message for the user.
        message: String,
    },
    /// An image's analysis ended (one worker's part of it, when shared; the pool passes one
    /// `Done` on, when every part has ended).
    Done {
        /// Page-side id.
        id: u32,
        /// Whether it was cancelled before the end.
        cancelled: bool,
        /// Milliseconds from the request to the first diagnosis.
        first_ms: Option<f64>,
        /// Milliseconds in all.
        total_ms: f64,
    },
    /// A failure not tied to an image.
    Error {
        /// Message.
        message: String,
    },
    /// The worker stopped beyond recovery: a Rust panic (posted by its panic hook before the
    /// WebAssembly traps) or an uncaught error in its script (the page's `error` event). The
    /// pool ends the job it held as failed ([`crate::pool::Dispatch::crashed`]) and starts a new
    /// worker in its place; the page then asks the new worker again for the decodings it still
    /// awaited (once) and fails the rest.
    Crashed {
        /// What stopped it.
        message: String,
    },
}

/// Tolerance of the CPU/WebGPU agreement check (f32 convolutions in another order).
pub const AGREEMENT_TOLERANCE: f32 = 1e-4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let r = Request::Decode {
            id: 3,
            name: "a.jpg".into(),
        };
        let s = serde_json::to_string(&r).expect("json");
        assert!(s.contains("\"type\":\"Decode\""));
        assert_eq!(serde_json::from_str::<Request>(&s).expect("parse"), r);
    }
}
