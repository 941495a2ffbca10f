//! `detect-eval`: the white-cell detector against BCCD's boxes.

use super::{err, median, CmdResult};
use std::path::Path;
use std::time::Instant;

pub fn detect_eval(data: &Path, verbose: bool) -> CmdResult {
    use model_core::detect::match_boxes;
    let fields = model_core::bccd::fields(data).map_err(err)?;
    let (mut tp, mut np, mut nt) = (0, 0, 0);
    // Matched, predicted and annotated white cells on the even- and odd-numbered fields
    // (constants are chosen on the even ones and checked on the odd ones).
    let mut halves = [[0usize; 3]; 2];
    let mut diam_err = Vec::new();
    let mut diam_ratio = Vec::new();
    // Per field: its own red-cell reading, the annotated size, the white cells matched and
    // the boxes predicted.
    let mut readings = Vec::new();
    let mut rbc_rel = Vec::new();
    let mut single = 0;
    let start = Instant::now();
    for (path, ann) in &fields {
        let (img, f) = detect_file(path, None)?;
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
        readings.push((
            f.rbc_reading_px,
            ann.rbc_diameter(img.width(), img.height()),
            t,
            p,
        ));
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
    slide_scale_eval(&fields, &readings)?;
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

/// BCCD's fields share a camera and magnification: taken as one slide, how do the fields whose
/// own reading strays from the slide's ([`model_core::slide_scale`]) fare with their own size
/// and with the slide's?
fn slide_scale_eval(
    fields: &[(std::path::PathBuf, model_core::bccd::Annotation)],
    readings: &[(Option<f32>, Option<f32>, usize, usize)],
) -> CmdResult {
    use model_core::detect::match_boxes;
    let own: Vec<f32> = readings.iter().filter_map(|r| r.0).collect();
    let Some(slide) = model_core::slide_scale::slide_scale(&own) else {
        return Ok(());
    };
    let (mut n, mut tp_own, mut np_own, mut tp_slide, mut np_slide, mut nt) = (0, 0, 0, 0, 0, 0);
    let (mut err_own, mut err_slide) = (Vec::new(), Vec::new());
    for ((path, ann), &(reading, truth, t, p)) in fields.iter().zip(readings) {
        let Some(reading) = reading.filter(|r| slide.deviation(*r).is_some()) else {
            continue;
        };
        n += 1;
        let (_, f) = detect_file(path, Some(slide.diameter_px))?;
        let pred: Vec<[u32; 4]> = f.cells.iter().map(|c| c.bbox).collect();
        let (ts, ps, ns) = match_boxes(&pred, &ann.wbc, 0.5);
        tp_own += t;
        np_own += p;
        tp_slide += ts;
        np_slide += ps;
        nt += ns;
        if let Some(truth) = truth {
            err_own.push(((reading - truth).abs() / truth) as f64);
            err_slide.push(((slide.diameter_px - truth).abs() / truth) as f64);
        }
    }
    let within = |e: &[f64]| e.iter().filter(|e| **e < 0.3).count();
    println!(
        "one slide: red-cell size {:.1} px (median of {} fields); {n} fields read more than {:.0} % away",
        slide.diameter_px,
        slide.fields,
        100.0 * model_core::slide_scale::MAX_DEVIATION
    );
    println!(
        "  their diameter error against the annotations, median: own reading {:.3} ({} of {} within 30 %), the slide's {:.3} ({} of {})",
        median(&err_own),
        within(&err_own),
        err_own.len(),
        median(&err_slide),
        within(&err_slide),
        err_slide.len()
    );
    println!(
        "  their white cells: own reading {tp_own} of {nt} found, precision {:.3}; the slide's {tp_slide} of {nt}, precision {:.3}",
        tp_own as f64 / np_own.max(1) as f64,
        tp_slide as f64 / np_slide.max(1) as f64
    );
    Ok(())
}

/// The image at `path` and what the detector finds in it with the red-cell diameter
/// `rbc_diameter_px` (`None`: read from the image).
fn detect_file(
    path: &Path,
    rbc_diameter_px: Option<f32>,
) -> Result<(image::RgbImage, model_core::detect::SmearFindings), String> {
    let img = image::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_rgb8();
    let f =
        model_core::detect::detect(&img, &model_core::detect::DetectOptions { rbc_diameter_px });
    Ok((img, f))
}
