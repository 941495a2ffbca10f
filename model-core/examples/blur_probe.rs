//! Probe of the BCCD domain shift, second part (`docs/bccd-shift.txt`): is it sharpness rather
//! than colour? Measures the sharpness (mean squared Laplacian of the 64x64 model input, per
//! pixel and channel) of PBC val cells and of the white cells detected in every third BCCD
//! field, then classifies the PBC val cells blurred (Gaussian, sigma in model-input pixels, by
//! `image::imageops::blur`) with the shipped model: accuracy, share called platelet, triage and
//! the colour gate. Run: `cargo run --release -p model-core --example blur_probe`.
mod probe;

use image::{ImageBuffer, Rgb};
use model_core::preprocess::CellCrop;

/// Mean squared 4-neighbour Laplacian over the interior pixels and the 3 channels.
fn sharpness(c: &CellCrop) -> f64 {
    let (s, n) = (c.size, c.size * c.size);
    let mut sum = 0.0f64;
    for plane in c.pixels.chunks(n) {
        for y in 1..s - 1 {
            for x in 1..s - 1 {
                let at = |yy: usize, xx: usize| plane[yy * s + xx] as f64;
                let l = at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1) - 4.0 * at(y, x);
                sum += l * l;
            }
        }
    }
    sum / (3 * (s - 2) * (s - 2)) as f64
}

/// The crop blurred with a Gaussian of `sigma` pixels (none for 0).
fn blurred(c: &CellCrop, sigma: f32) -> CellCrop {
    if sigma <= 0.0 {
        return c.clone();
    }
    let (s, n) = (c.size, c.size * c.size);
    let img = ImageBuffer::<Rgb<f32>, Vec<f32>>::from_fn(s as u32, s as u32, |x, y| {
        let i = y as usize * s + x as usize;
        Rgb([c.pixels[i], c.pixels[n + i], c.pixels[2 * n + i]])
    });
    let b = image::imageops::blur(&img, sigma);
    let mut pixels = vec![0.0; 3 * n];
    for (x, y, p) in b.enumerate_pixels() {
        let i = y as usize * s + x as usize;
        for ch in 0..3 {
            pixels[ch * n + i] = p.0[ch];
        }
    }
    CellCrop { size: s, pixels }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (clf, names) = probe::shipped();
    let platelet = names
        .iter()
        .position(|n| n == "platelet")
        .expect("a platelet class");
    let val = probe::pbc_val_crops();
    let bccd = probe::bccd_crops();
    let sharp_bccd = median(bccd.iter().map(sharpness).collect());
    println!(
        "sharpness (median mean squared Laplacian of the 64x64 input): BCCD {sharp_bccd:.5} ({} cells)",
        bccd.len()
    );
    for sigma in [0.0f32, 0.5, 0.8, 1.2, 1.8] {
        let cells: Vec<CellCrop> = val.iter().map(|(c, _)| blurred(c, sigma)).collect();
        let sharp = median(cells.iter().map(sharpness).collect());
        let d = clf.diagnose(cells).expect("diagnose");
        let n = val.len() as f32;
        let right = d
            .iter()
            .zip(&val)
            .filter(|(d, (_, l))| d.class == *l)
            .count();
        let platelets = d
            .iter()
            .zip(&val)
            .filter(|(d, (_, l))| d.class == platelet && *l != platelet)
            .count();
        let mut triage = std::collections::BTreeMap::new();
        for x in &d {
            *triage.entry(x.triage.name()).or_insert(0) += 1;
        }
        let gated = d.iter().filter(|x| x.unusual_colour).count();
        println!(
            "PBC val blurred sigma {sigma:.1}: sharpness {sharp:.5}; accuracy {:.3} (n={}); other cells called platelet {:.3}; triage {triage:?}; colour gate {gated}",
            right as f32 / n,
            val.len(),
            platelets as f32 / n,
        );
    }
}
