//! How to bring a single-cell image at another magnification to the training scale, chosen on
//! PBC val images (128 px, every second of about 400) zoomed in by `z`: the centre square (what
//! the viewer does unless told the red-cell diameter), a square of red-cell diameter /
//! RBC_PER_CROP around the centre from the image's own reading (when it is more than `band`
//! from RBC_PER_CROP, or always), or from the exact diameter (`z` times RBC_PER_CROP of the
//! side, as a user who knows the magnification sets it); padded by repeating the edge or by
//! mirroring. `docs/zoom.txt`. Run: `cargo run --release -p model-core --example zoom_val_probe`.
mod probe;

use image::RgbImage;
use model_core::detect::{detect, DetectOptions, RBC_PER_CROP};
use model_core::preprocess::to_model_input;

fn mirror(v: i64, n: i64) -> i64 {
    let period = 2 * n;
    let m = v.rem_euclid(period);
    if m < n {
        m
    } else {
        period - 1 - m
    }
}

fn crop(img: &RgbImage, side: i64, mirrored: bool) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (w / 2 - side / 2, h / 2 - side / 2);
    RgbImage::from_fn(side as u32, side as u32, |x, y| {
        let (sx, sy) = (x0 + x as i64, y0 + y as i64);
        let (sx, sy) = if mirrored {
            (mirror(sx, w), mirror(sy, h))
        } else {
            (sx.clamp(0, w - 1), sy.clamp(0, h - 1))
        };
        *img.get_pixel(sx as u32, sy as u32)
    })
}

fn main() {
    let (clf, _) = probe::shipped();
    let val: Vec<_> = probe::pbc_val().into_iter().step_by(2).collect();
    let opts = DetectOptions {
        rbc_diameter_px: None,
    };
    for z in [1.0f32, 1.25, 1.5] {
        let zoomed: Vec<(RgbImage, usize, Option<f32>)> = val
            .iter()
            .map(|(img, l)| {
                let zi = probe::zoomed(img, z);
                let d = detect(&zi, &opts).rbc_reading_px;
                (zi, *l, d)
            })
            .collect();
        let mut r: Vec<f32> = zoomed
            .iter()
            .filter_map(|x| x.2.map(|d| d / x.0.width() as f32))
            .collect();
        r.sort_by(|a, b| a.total_cmp(b));
        // (name, rescale from the reading beyond this band (None: never), from the exact
        // diameter, mirror padding)
        let variants: [(&str, Option<f32>, bool, bool); 6] = [
            ("centre square", None, false, false),
            ("reading, band 0.10, edge", Some(0.10), false, false),
            ("reading, band 0.10, mirror", Some(0.10), false, true),
            ("reading, always, mirror", Some(0.0), false, true),
            ("exact diameter, edge", None, true, false),
            ("exact diameter, mirror", None, true, true),
        ];
        for (name, band, exact, mirrored) in variants {
            let mut rescaled = 0;
            let inputs = zoomed
                .iter()
                .map(|(img, _, d)| {
                    let side = img.width().min(img.height()) as f32;
                    let d = if exact {
                        Some(z * RBC_PER_CROP * side)
                    } else {
                        *d
                    };
                    let far = |d: f32, band: f32| ((d / side) / RBC_PER_CROP - 1.0).abs() > band;
                    match d {
                        Some(d) if exact || band.is_some_and(|b| far(d, b)) => {
                            rescaled += 1;
                            to_model_input(
                                &crop(img, (d / RBC_PER_CROP).round() as i64, mirrored),
                                64,
                            )
                        }
                        _ => to_model_input(img, 64),
                    }
                })
                .collect();
            let dg = clf.diagnose(inputs).expect("diagnose");
            let right = dg
                .iter()
                .zip(&zoomed)
                .filter(|(x, (_, l, _))| x.class == *l)
                .count();
            println!("zoom {z:.2} (reading median {:.3}, expected {:.3}): {name}: accuracy {:.3} ({} rescaled of {})", r.get(r.len() / 2).copied().unwrap_or(f32::NAN), z * RBC_PER_CROP, right as f32 / zoomed.len() as f32, rescaled, zoomed.len());
        }
    }
}
