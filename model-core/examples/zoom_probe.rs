//! A single cell cropped by the user at another magnification than PBC's: the PBC originals
//! (test split, every second one) zoomed in by a factor `z` (their centre square of side 360/z,
//! resized back to 360) and prepared as the viewer prepares any image (`smear::prepare`);
//! accuracy, how many pass for single-cell images, and the red-cell reading; then with the
//! red-cell diameter set as a user who knows the magnification would (`z` times the median
//! reading of the originals, RBC_PER_CROP of the side).
//! Run: `cargo run --release -p model-core --example zoom_probe`.
mod probe;

use model_core::detect::{DetectOptions, RBC_PER_CROP};

fn main() {
    let (clf, names) = probe::shipped();
    let files = model_core::dataset::pbc_originals(&probe::data()).expect("PBC originals");
    let picked: Vec<_> = files.iter().step_by(2).collect();
    for (z, set) in [1.0f32, 1.25, 1.5, 2.0]
        .into_iter()
        .flat_map(|z| [(z, false), (z, true)])
    {
        let (mut inputs, mut labels, mut single, mut cells, mut none) = (vec![], vec![], 0, 0, 0);
        let mut ratios = vec![];
        for p in &picked {
            let label = probe::original_label(p, &names);
            let zoomed = probe::zoomed(&probe::read(p), z);
            let side = zoomed.width();
            let opts = DetectOptions {
                rbc_diameter_px: set.then_some(z * RBC_PER_CROP * side as f32),
            };
            let (f, prepared) = model_core::smear::prepare(&zoomed, &opts, 64);
            if let Some(d) = f.rbc_reading_px {
                ratios.push(d / side as f32);
            }
            single += usize::from(f.single_cell);
            cells += prepared.len();
            // The cell nearest the centre is the one the image is of.
            let c = side as i64 / 2;
            match prepared.into_iter().min_by_key(|x| {
                let b = x.cell.bbox;
                ((b[0] + b[2]) as i64 / 2 - c).pow(2) + ((b[1] + b[3]) as i64 / 2 - c).pow(2)
            }) {
                Some(x) => {
                    inputs.push(x.input);
                    labels.push(label);
                }
                None => none += 1,
            }
        }
        let d = clf.diagnose(inputs).expect("diagnose");
        let right = d
            .iter()
            .zip(&labels)
            .filter(|(x, l)| x.class == **l)
            .count();
        ratios.sort_by(|a, b| a.total_cmp(b));
        println!(
            "zoom {z:.2}, {}: accuracy {:.3} ({right} of {} images; {none} with no cell found), single-cell {single}, cells found {cells}, red-cell reading median {:.3} of the side (expected {:.3})",
            if set { "diameter set" } else { "diameter read" },
            right as f32 / picked.len() as f32,
            picked.len(),
            ratios.get(ratios.len() / 2).copied().unwrap_or(f32::NAN),
            z * RBC_PER_CROP
        );
    }
}
