//! Touching white cells: which images hold white cells whose boxes overlap (touching cells
//! split apart, or found as two), on the PBC originals (one centred cell each, sometimes a
//! neighbour at the border) and BCCD's fields, each with its own red-cell reading and at its
//! slide's size (BCCD: 89.8 px, the median of its fields' readings, `cytolens detect-eval`;
//! PBC: 0.203 of the side, `RBC_PER_CROP`); and BCCD's white-cell recall and precision at the
//! slide's size. Each listed image is to be checked by eye.
//! `cargo run --release -p model-core --example touching_probe`
mod probe;

use model_core::detect::{detect, iou, match_boxes, DetectOptions, RBC_PER_CROP};

/// Whether two of `boxes` overlap.
fn overlap(boxes: &[[u32; 4]]) -> bool {
    boxes
        .iter()
        .enumerate()
        .any(|(i, a)| boxes[i + 1..].iter().any(|b| iou(*a, *b) > 0.0))
}

fn main() {
    let data = probe::data();
    let pbc = model_core::dataset::pbc_originals(&data).expect("PBC originals");
    let bccd = model_core::bccd::fields(&data).expect("BCCD fields");
    let pbc_d = RBC_PER_CROP * 360.0;
    let mut images: Vec<(&std::path::Path, f32, Vec<[u32; 4]>)> = Vec::new();
    images.extend(pbc.iter().map(|p| (p.as_path(), pbc_d, vec![])));
    images.extend(bccd.iter().map(|(p, a)| (p.as_path(), 89.8, a.wbc.clone())));
    let (mut counts, mut found) = ([0usize; 2], [0usize; 3]);
    for (path, slide_d, truth) in &images {
        let img = probe::read(path);
        for (k, d) in [None, Some(*slide_d)].into_iter().enumerate() {
            let f = detect(&img, &DetectOptions { rbc_diameter_px: d });
            let boxes: Vec<[u32; 4]> = f.cells.iter().map(|c| c.bbox).collect();
            if overlap(&boxes) {
                counts[k] += 1;
                let how = if k == 0 {
                    "own reading"
                } else {
                    "slide's size"
                };
                println!(
                    "{}\t{how} {:.1}\t{boxes:?}",
                    path.display(),
                    f.rbc_diameter_px.unwrap_or(0.0)
                );
            }
            if k == 1 && !truth.is_empty() {
                let (t, p, n) = match_boxes(&boxes, truth, 0.5);
                found = [found[0] + t, found[1] + p, found[2] + n];
            }
        }
    }
    println!(
        "{} and {} of {} images hold white cells whose boxes overlap (own reading, slide's size)",
        counts[0],
        counts[1],
        images.len()
    );
    let [t, p, n] = found;
    println!(
        "BCCD at the slide's size: recall {:.3} ({t}/{n}), precision {:.3} ({t}/{p})",
        t as f64 / n as f64,
        t as f64 / p as f64
    );
}
