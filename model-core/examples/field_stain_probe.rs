//! Probe of the BCCD domain shift, third part (`docs/bccd-shift.txt`): field-level stain
//! normalisation. Each image's colours are mapped, channel by channel, so that the whole
//! field's histogram matches the pooled histogram of PBC val images (histogram matching, a
//! monotone lookup table per channel and field), which keeps the colours of a cell relative to
//! its own field, unlike matching each crop's moments (`stain_probe`). The shipped model then
//! classifies the white cells detected in every third BCCD field, and PBC val cells normalised
//! the same way (the cost on the model's own domain). Run:
//! `cargo run --release -p model-core --example field_stain_probe`.
mod probe;

use image::RgbImage;
use model_core::detect::DetectOptions;
use model_core::preprocess::to_model_input;
use std::collections::BTreeMap;

/// Per channel 256-bin histograms of an image.
fn histograms(img: &RgbImage) -> [[f64; 256]; 3] {
    let mut h = [[0.0; 256]; 3];
    for p in img.pixels() {
        for c in 0..3 {
            h[c][p.0[c] as usize] += 1.0;
        }
    }
    h
}

/// Cumulative distribution of a histogram, ending at 1.
fn cdf(h: &[f64; 256]) -> [f64; 256] {
    let total: f64 = h.iter().sum();
    let mut out = [0.0; 256];
    let mut acc = 0.0;
    for (o, v) in out.iter_mut().zip(h) {
        acc += v;
        *o = acc / total.max(1.0);
    }
    out
}

/// Lookup tables mapping `from`'s distribution onto `to`'s, per channel.
fn matching(from: &[[f64; 256]; 3], to: &[[f64; 256]; 3]) -> [[u8; 256]; 3] {
    std::array::from_fn(|c| {
        let (f, t) = (cdf(&from[c]), cdf(&to[c]));
        std::array::from_fn(|v| t.iter().position(|&q| q >= f[v]).unwrap_or(255) as u8)
    })
}

fn apply(img: &RgbImage, lut: &[[u8; 256]; 3]) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in 0..3 {
            p.0[c] = lut[c][p.0[c] as usize];
        }
    }
    out
}

fn main() {
    let (clf, names) = probe::shipped();
    let val = probe::pbc_val();
    let mut reference = [[0.0; 256]; 3];
    for (img, _) in &val {
        let h = histograms(img);
        for c in 0..3 {
            for v in 0..256 {
                reference[c][v] += h[c][v];
            }
        }
    }
    for normalise in [false, true] {
        let cells = val
            .iter()
            .map(|(img, _)| {
                let img = if normalise {
                    apply(img, &matching(&histograms(img), &reference))
                } else {
                    img.clone()
                };
                to_model_input(&img, 64)
            })
            .collect();
        let d = clf.diagnose(cells).expect("diagnose");
        let right = d
            .iter()
            .zip(&val)
            .filter(|(d, (_, l))| d.class == *l)
            .count();
        println!(
            "PBC val, field-normalised {normalise}: accuracy {:.3} (n={})",
            right as f32 / val.len() as f32,
            val.len()
        );
    }
    let fields = probe::bccd_fields();
    for normalise in [false, true] {
        let mut cells = Vec::new();
        for p in &fields {
            let img = probe::read(p);
            let opts = DetectOptions {
                rbc_diameter_px: None,
            };
            // Detect on the original field, crop the same boxes from the normalised one.
            let (findings, prepared) = model_core::smear::prepare(&img, &opts, 64);
            let norm = apply(&img, &matching(&histograms(&img), &reference));
            let d = findings.rbc_diameter_px.unwrap_or(100.0);
            let prepared: Vec<_> = prepared
                .into_iter()
                .map(|c| model_core::smear::PreparedCell {
                    input: if normalise {
                        to_model_input(&model_core::detect::cell_crop(&norm, &c.cell, d), 64)
                    } else {
                        c.input
                    },
                    ..c
                })
                .collect();
            cells.extend(prepared.into_iter().map(|c| c.input));
        }
        let d = clf.diagnose(cells).expect("diagnose");
        let mut classes = BTreeMap::new();
        let mut triage = BTreeMap::new();
        for x in &d {
            *classes.entry(names[x.class].as_str()).or_insert(0) += 1;
            *triage.entry(x.triage.name()).or_insert(0) += 1;
        }
        let gated = d.iter().filter(|x| x.unusual_colour).count();
        println!(
            "BCCD, field-normalised {normalise}: {} cells; classes {classes:?}; triage {triage:?}; colour gate {gated}",
            d.len()
        );
    }
}
