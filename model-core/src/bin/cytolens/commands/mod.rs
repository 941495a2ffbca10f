//! The CLI's commands beyond training the denoiser.

mod baseline;
mod bench;
mod calibrate;
mod classify;
mod detect;
mod eval;
mod tune;

pub use baseline::{calibrate_baseline, train_baseline};
pub use bench::bench;
pub use calibrate::{calibrate, colour_gate, focus_gate, to_half, CalibrateOptions};
pub use classify::{classify, Format, Scale};
pub use detect::detect_eval;
pub use eval::{eval, eval_anomaly, EvalOutputs};
pub use tune::tune;

use model_core::dataset::{load_split, CellSet, Split};
use std::path::{Path, PathBuf};

type CmdResult = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// One split of the PBC data, loaded at whatever side a model was trained at (each side has
/// its own file in the disk cache) and thinned to evenly spread cells: the same cells, in the
/// same order, at every side.
#[derive(Clone)]
pub struct SplitSource {
    /// Root of the shared data (holds `pbc/`).
    pub data_root: PathBuf,
    /// Which split.
    pub split: Split,
    /// Successive `CellSet::subsample` sizes (empty: every cell).
    pub thin: Vec<usize>,
}

impl SplitSource {
    /// Every cell of `split` under `data_root`.
    pub fn new(data_root: &Path, split: Split) -> Self {
        Self {
            data_root: data_root.to_path_buf(),
            split,
            thin: Vec::new(),
        }
    }

    /// The same source, further thinned to `n` evenly spread cells.
    pub fn thinned(&self, n: usize) -> Self {
        let mut s = self.clone();
        s.thin.push(n);
        s
    }

    /// The cells at `size` x `size` pixels.
    pub fn at(&self, size: usize) -> Result<CellSet, String> {
        let mut cells =
            load_split(&self.data_root, self.split, size, Path::new("runs/cache")).map_err(err)?;
        for &n in &self.thin {
            cells = cells.subsample(n);
        }
        Ok(cells)
    }
}

/// Median of a non-empty slice (0 for an empty one).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// CSV columns of a diagnosis, in the order [`diagnosis_fields`] fills them: confidence,
/// uncertainty, anomaly score, triage, evaluations, the colour gate's score and flag (empty
/// and 0 without a gate), the focus gate's sharpness and flag (the same), then every class's
/// probability (`p_<class>`). `eval --cells` and
/// `classify --csv` put them after columns of their own.
pub fn diagnosis_header<S: AsRef<str>>(classes: &[S]) -> Vec<String> {
    let mut h: Vec<String> = [
        "confidence",
        "uncertainty",
        "anomaly",
        "triage",
        "evals",
        "colour",
        "unusual_colour",
        "sharpness",
        "out_of_focus",
    ]
    .map(String::from)
    .to_vec();
    h.extend(classes.iter().map(|c| format!("p_{}", c.as_ref())));
    h
}

/// A diagnosis's fields under [`diagnosis_header`].
pub fn diagnosis_fields(d: &model_core::diagnosis::Diagnosis) -> Vec<String> {
    let mut row = vec![
        format!("{:.5}", d.confidence),
        format!("{:.5}", d.uncertainty),
        format!("{:.4}", d.anomaly),
        d.triage.name().to_string(),
        d.evals.to_string(),
        d.colour.map(|c| format!("{c:.3}")).unwrap_or_default(),
        u8::from(d.unusual_colour).to_string(),
        d.sharpness.map(|c| format!("{c:.3}")).unwrap_or_default(),
        u8::from(d.out_of_focus).to_string(),
    ];
    row.extend(d.probs.iter().map(|p| format!("{p:.6}")));
    row
}
