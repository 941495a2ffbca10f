//! `detect-eval`: the white-cell detector against BCCD's boxes.

use super::{err, median, CmdResult};
use std::path::Path;
use std::time::Instant;

pub fn detect_eval(data: &Path, verbose: bool) -> CmdResult {
    use model_core::detect::{detect, match_boxes, DetectOptions};
    let fields = model_core::bccd::fields(data).map_err(err)?;
    let (mut tp, mut np, mut nt) = (0, 0, 0);
    // Matched, predicted and annotated white cells on the even- and odd-numbered fields
    // (constants are chosen on the even ones and checked on the odd ones).
    let mut halves = [[0usize; 3]; 2];
    let mut diam_err = Vec::new();
    let mut diam_ratio = Vec::new();
    let mut rbc_rel = Vec::new();
    let mut single = 0;
    let start = Instant::now();
    for (path, ann) in &fields {
        let img = image::open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .to_rgb8();
        let f = detect(
            &img,
            &DetectOptions {
                rbc_diameter_px: None,
            },
        );
        single += usize::from(f.single_cell);
        let pred: Vec<[u32; 4]> = f.cells.iter().map(|c| c.bbox).collect();
        let (t, p, n) = match_boxes(&pred, &ann.wbc, 0.5);
        tp += t;
        np += p;
        nt += n;
        let half = &mut halves[field_number(path) % 2];
        half[0] += t;
        half[1] += p;
        half[2] += n;
        if let (Some(d), Some(truth)) = (
            f.rbc_diameter_px,
            ann.rbc_diameter(img.width(), img.height()),
        ) {
            diam_err.push(((d - truth).abs() / truth) as f64);
            diam_ratio.push((d / truth) as f64);
        }
        if !ann.rbc.is_empty() {
            rbc_rel.push((f.rbc_count as f64 - ann.rbc.len() as f64).abs() / ann.rbc.len() as f64);
        }
        if verbose {
            println!("{}\twbc {t}/{n} (pred {p})\trbc {} (annotated {})\tplatelets {} (annotated {})\tdiam {:?}", path.display(), f.rbc_count, ann.rbc.len(), f.platelet_count, ann.platelets.len(), f.rbc_diameter_px);
        }
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / fields.len().max(1) as f64;
    println!("BCCD fields: {}", fields.len());
    println!(
        "white cells: recall {:.3} ({tp}/{nt}), precision {:.3} ({tp}/{np}) at IoU 0.5",
        tp as f64 / nt.max(1) as f64,
        tp as f64 / np.max(1) as f64
    );
    println!(
        "red-cell count: relative error against the annotated boxes: median {:.3}, mean {:.3}",
        median(&rbc_rel),
        rbc_rel.iter().sum::<f64>() / rbc_rel.len().max(1) as f64
    );
    println!(
        "red-cell diameter: median relative error {:.3} against the annotated boxes' mean side ({} fields)",
        median(&diam_err),
        diam_err.len()
    );
    println!(
        "red-cell diameter: median ratio to the annotated size {:.3}",
        median(&diam_ratio)
    );
    let within = diam_err.iter().filter(|e| **e < 0.3).count();
    println!(
        "red-cell diameter within 30 % of the annotated size: {within} of {} fields",
        diam_err.len()
    );
    for (name, [t, p, n]) in ["even", "odd"].iter().zip(halves) {
        println!(
            "{name} fields: recall {:.3} ({t}/{n}), precision {:.3} ({t}/{p})",
            t as f64 / n.max(1) as f64,
            t as f64 / p.max(1) as f64
        );
    }
    println!("fields taken for single-cell images: {single}");
    println!("detection time: {ms:.1} ms per 640x480 field (native, 1 thread)");
    Ok(())
}

/// The number in a BCCD file name (`BloodImage_00034.jpg` is 34), 0 if it has none.
fn field_number(path: &Path) -> usize {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.chars().filter(char::is_ascii_digit).collect::<String>())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}
