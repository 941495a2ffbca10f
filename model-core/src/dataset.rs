//! The PBC data set as split by `pbc/manifest.csv`, decoded once and cached at model resolution.

use crate::classes::class_index;
use crate::error::{Error, Result};
use crate::preprocess::from_source;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One split of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training images (70 %).
    Train,
    /// Validation images (10 %): tuning only.
    Val,
    /// Held-out test images (20 %): every reported figure.
    Test,
}

impl Split {
    /// Name as written in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parse a split name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "val" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            other => Err(Error::Invalid(format!(
                "unknown split '{other}' (train, val, test)"
            ))),
        }
    }
}

/// Images of one split at model resolution, CHW in [-1, 1].
#[derive(Debug, Clone)]
pub struct CellSet {
    /// Side of every image.
    pub size: usize,
    /// `len * 3 * size * size` values.
    pub pixels: Vec<f32>,
    /// Class index of each image.
    pub labels: Vec<usize>,
    /// Manifest path of each image.
    pub paths: Vec<String>,
}

#[cfg(test)]
impl CellSet {
    /// Four 16-px cells of classes 0 to 3 with a fixed pixel pattern: data for the training
    /// tests of the denoiser and the baseline.
    pub(crate) fn tiny() -> Self {
        CellSet {
            size: 16,
            pixels: (0..4 * 3 * 16 * 16)
                .map(|i| (i % 7) as f32 / 7.0 - 0.5)
                .collect(),
            labels: vec![0, 1, 2, 3],
            paths: vec![String::new(); 4],
        }
    }
}

impl CellSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = 3 * self.size * self.size;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Every image as a classifier input (`[len]` crops of `3 * size * size` CHW values).
    pub fn crops(&self) -> Vec<crate::preprocess::CellCrop> {
        (0..self.len())
            .map(|i| crate::preprocess::CellCrop {
                size: self.size,
                pixels: self.image(i).to_vec(),
            })
            .collect()
    }

    /// Keep only the images whose label satisfies `keep` (e.g. to leave a class out).
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> CellSet {
        let mut out = CellSet {
            size: self.size,
            pixels: Vec::new(),
            labels: Vec::new(),
            paths: Vec::new(),
        };
        for i in 0..self.len() {
            if keep(self.labels[i]) {
                out.pixels.extend_from_slice(self.image(i));
                out.labels.push(self.labels[i]);
                out.paths.push(self.paths[i].clone());
            }
        }
        out
    }

    /// An evenly spread subset of at most `n` images (every k-th), keeping class balance.
    pub fn subsample(&self, n: usize) -> CellSet {
        if n >= self.len() {
            return self.clone();
        }
        let stride = self.len() as f64 / n as f64;
        let keep: Vec<usize> = (0..n).map(|i| (i as f64 * stride) as usize).collect();
        let mut out = CellSet {
            size: self.size,
            pixels: Vec::new(),
            labels: Vec::new(),
            paths: Vec::new(),
        };
        for i in keep {
            out.pixels.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
            out.paths.push(self.paths[i].clone());
        }
        out
    }
}

/// Read the manifest rows of one split: `(path relative to the data root, class index)`.
pub fn manifest_rows(data_root: &Path, split: Split) -> Result<Vec<(String, usize)>> {
    let path = data_root.join("pbc/manifest.csv");
    let mut reader = csv::Reader::from_path(&path)
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        let (p, label, s) = (&rec[0], &rec[1], &rec[3]);
        if s != split.name() {
            continue;
        }
        let class = class_index(label)
            .ok_or_else(|| Error::Data(format!("unknown class '{label}' in manifest")))?;
        rows.push((p.to_string(), class));
    }
    Ok(rows)
}

/// The full-resolution PBC originals under `pbc/original` of the data root (any depth),
/// sorted by path.
pub fn pbc_originals(data_root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![data_root.join("pbc/original")];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Io {
            path: d.display().to_string(),
            source,
        })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Load a split at `size` px, from a cache file in `cache_dir` when present.
pub fn load_split(
    data_root: &Path,
    split: Split,
    size: usize,
    cache_dir: &Path,
) -> Result<CellSet> {
    let cache = cache_dir.join(format!("pbc-{}-{size}.bin", split.name()));
    let rows = manifest_rows(data_root, split)?;
    if let Ok(bytes) = std::fs::read(&cache) {
        let n = 3 * size * size;
        if bytes.len() == rows.len() * n {
            return Ok(CellSet {
                size,
                pixels: bytes.iter().map(|&b| b as f32 / 127.5 - 1.0).collect(),
                labels: rows.iter().map(|r| r.1).collect(),
                paths: rows.iter().map(|r| r.0.clone()).collect(),
            });
        }
    }
    let decoded: Vec<Result<Vec<f32>>> = rows
        .par_iter()
        .map(|(p, _)| {
            let full: PathBuf = data_root.join(p);
            let img = image::open(&full)
                .map_err(|e| Error::Data(format!("{}: {e}", full.display())))?
                .to_rgb8();
            Ok(from_source(&img, size).pixels)
        })
        .collect();
    let mut pixels = Vec::with_capacity(rows.len() * 3 * size * size);
    for d in decoded {
        pixels.extend(d?);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let bytes: Vec<u8> = pixels
        .iter()
        .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
        .collect();
    std::fs::write(&cache, bytes).map_err(|e| Error::io(&cache, e))?;
    // Re-quantise so a fresh decode and a cached load give identical inputs.
    let pixels = pixels
        .iter()
        .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) / 127.5 - 1.0)
        .collect();
    Ok(CellSet {
        size,
        pixels,
        labels: rows.iter().map(|r| r.1).collect(),
        paths: rows.iter().map(|r| r.0.clone()).collect(),
    })
}
