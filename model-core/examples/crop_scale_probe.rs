//! Which crop scale suits the classifier on cells of its own lab? The 320 PBC originals (test
//! split, 360x363, labelled by folder) are cropped as a smear's cells are (the detector's box
//! and red-cell size, a square of red-cell diameter / `k` around the box's centre) for several
//! constants `k`, and classified with the shipped model; beside them the training preparation
//! (the centre square). The constant that reads the training data's scale should do best.
//! Run: `cargo run --release -p model-core --example crop_scale_probe`.
mod probe;

use model_core::detect::{crop_square, detect, padded_crop, DetectOptions, RBC_PER_CROP};
use model_core::preprocess::{to_model_input, CellCrop};

fn report(
    what: &str,
    crops: Vec<CellCrop>,
    labels: &[usize],
    clf: &model_core::engine::CellClassifier,
    classes: usize,
) {
    let d = clf.diagnose(crops).expect("diagnose");
    let mut right = vec![0usize; classes];
    let mut total = vec![0usize; classes];
    for (x, &l) in d.iter().zip(labels) {
        total[l] += 1;
        right[l] += usize::from(x.class == l);
    }
    let acc = right.iter().sum::<usize>() as f64 / labels.len() as f64;
    let seen: Vec<f64> = (0..classes)
        .filter(|&c| total[c] > 0)
        .map(|c| right[c] as f64 / total[c] as f64)
        .collect();
    let balanced = seen.iter().sum::<f64>() / seen.len() as f64;
    let auto = d.iter().filter(|x| x.triage.name() == "auto").count();
    println!(
        "{what}: accuracy {acc:.3}, balanced {balanced:.3} ({} cells), auto-accepted {auto}",
        labels.len()
    );
}

fn main() {
    let (clf, names) = probe::shipped();
    let files = model_core::dataset::pbc_originals(&probe::data()).expect("PBC originals");
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for p in &files {
        let l = probe::original_label(p, &names);
        images.push(probe::read(p));
        labels.push(l);
    }
    let opts = DetectOptions {
        rbc_diameter_px: None,
    };
    let found: Vec<_> = images
        .iter()
        .map(|img| {
            let f = detect(img, &opts);
            // The detected cell nearest the centre (PBC images hold one, centred).
            let (cx, cy) = (img.width() as i64 / 2, img.height() as i64 / 2);
            let bbox = f
                .cells
                .iter()
                .map(|c| c.bbox)
                .min_by_key(|b| {
                    ((b[0] + b[2]) as i64 / 2 - cx).pow(2) + ((b[1] + b[3]) as i64 / 2 - cy).pow(2)
                })
                .unwrap_or([0, 0, img.width(), img.height()]);
            (bbox, f.rbc_diameter_px.unwrap_or(0.2 * img.width() as f32))
        })
        .collect();
    report(
        "centre square (training preparation)",
        images.iter().map(|img| to_model_input(img, 64)).collect(),
        &labels,
        &clf,
        names.len(),
    );
    // What is left to the centre square: the crop's centre (the box's, not the image's) and
    // the per-image reading (against the median of all, the scale the crops were taken at).
    let square = |img: &image::RgbImage, (cx, cy): (i64, i64), d: f32| {
        let side = (d / RBC_PER_CROP).round() as i64;
        to_model_input(&padded_crop(img, (cx - side / 2, cy - side / 2, side)), 64)
    };
    let mut ratios: Vec<f32> = images
        .iter()
        .zip(&found)
        .map(|(img, &(_, d))| d / img.width().min(img.height()) as f32)
        .collect();
    ratios.sort_by(|a, b| a.total_cmp(b));
    let median_ratio = ratios[ratios.len() / 2];
    let centre = |img: &image::RgbImage| (img.width() as i64 / 2, img.height() as i64 / 2);
    let box_centre = |b: [u32; 4]| ((b[0] + b[2]) as i64 / 2, (b[1] + b[3]) as i64 / 2);
    let median_d = |img: &image::RgbImage| median_ratio * img.width().min(img.height()) as f32;
    report(
        "smear crop at 0.203, centred on the image instead of the box",
        images
            .iter()
            .zip(&found)
            .map(|(img, &(_, d))| square(img, centre(img), d))
            .collect(),
        &labels,
        &clf,
        names.len(),
    );
    report(
        "smear crop at 0.203, the median reading of all images instead of each one's",
        images
            .iter()
            .zip(&found)
            .map(|(img, &(b, _))| square(img, box_centre(b), median_d(img)))
            .collect(),
        &labels,
        &clf,
        names.len(),
    );
    report(
        "smear crop at 0.203, both: the image's centre and the median reading",
        images
            .iter()
            .map(|img| square(img, centre(img), median_d(img)))
            .collect(),
        &labels,
        &clf,
        names.len(),
    );
    for k in [0.190f32, RBC_PER_CROP, 0.219, 0.235] {
        let crops = images
            .iter()
            .zip(&found)
            .map(|(img, &(bbox, d))| {
                let (x0, y0, side) = crop_square(bbox, d);
                // crop_square uses RBC_PER_CROP: rescale its side to the constant k.
                let side_k = (side as f32 * RBC_PER_CROP / k).round() as i64;
                let (cx, cy) = (x0 + side / 2, y0 + side / 2);
                to_model_input(
                    &padded_crop(img, (cx - side_k / 2, cy - side_k / 2, side_k)),
                    64,
                )
            })
            .collect();
        report(
            &format!("smear crop, red cell = {k:.3} of the crop"),
            crops,
            &labels,
            &clf,
            names.len(),
        );
    }
}
