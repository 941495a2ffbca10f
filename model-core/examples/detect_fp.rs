//! Where the white-cell detector's boxes that match no BCCD annotation fall, and which
//! annotated cells it misses (README, *Cell detection*).
//! `cargo run --release -p model-core --example detect_fp [DATA]` (DATA: `../shared/data`).
use model_core::detect::{detect, iou, match_pairs, DetectOptions};

fn main() {
    let data = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data".into());
    let fields = model_core::bccd::fields(std::path::Path::new(&data)).expect("fields");
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for (path, ann) in &fields {
        let img = image::open(path).expect("img").to_rgb8();
        let f = detect(
            &img,
            &DetectOptions {
                rbc_diameter_px: None,
            },
        );
        let boxes: Vec<[u32; 4]> = f.cells.iter().map(|c| c.bbox).collect();
        let pairs = match_pairs(&boxes, &ann.wbc, 0.5);
        for (c, _) in f.cells.iter().zip(&pairs).filter(|(_, m)| m.is_none()) {
            let p = c.bbox;
            let maxiou = ann.wbc.iter().map(|t| iou(p, *t)).fold(0.0f32, f32::max);
            let (cx, cy) = ((p[0] + p[2]) / 2, (p[1] + p[3]) / 2);
            let inside = ann
                .wbc
                .iter()
                .any(|t| cx >= t[0] && cx < t[2] && cy >= t[1] && cy < t[3]);
            let border = p[0] == 0 || p[1] == 0 || p[2] >= img.width() || p[3] >= img.height();
            let kind = if maxiou > 0.0 && inside {
                "centre inside a WBC box"
            } else if maxiou > 0.0 {
                "overlaps a WBC box"
            } else if border {
                "no WBC, at border"
            } else {
                "no WBC"
            };
            *kinds.entry(kind).or_default() += 1;
            println!(
                "{}\t{kind}\tbox {:?} ({}x{}) nucleus {} maxiou {:.2} truths {:?} d {:?}",
                path.display(),
                p,
                p[2] - p[0],
                p[3] - p[1],
                c.nucleus_area,
                maxiou,
                ann.wbc,
                f.rbc_diameter_px.map(|d| d.round())
            );
        }
        for (i, t) in ann.wbc.iter().enumerate() {
            if !pairs.contains(&Some(i)) {
                let maxiou = f
                    .cells
                    .iter()
                    .map(|c| iou(c.bbox, *t))
                    .fold(0.0f32, f32::max);
                println!(
                    "{}\tMISSED\ttruth {:?} maxiou {:.2}",
                    path.display(),
                    t,
                    maxiou
                );
            }
        }
    }
    println!("{kinds:?}");
}
