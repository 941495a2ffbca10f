//! CPU/GPU agreement: the shipped model on burn's flex CPU backend and on its wgpu backend gives
//! the same denoiser outputs and the same diagnoses. Built only with `--features gpu`, and then
//! it needs a wgpu adapter: CI installs Mesa's lavapipe (a Vulkan driver on the CPU), which runs
//! the same wgpu/CubeCL kernels a GPU would; on a machine with a GPU the same command tests that
//! GPU. Run: `cargo test --release -p model-core --features gpu --test gpu_agreement`.

use burn::prelude::Device;
use model_core::classify::{ClassifierRun, ClassifierSettings};
use model_core::dataset::{manifest_rows, Split};
use model_core::decode::decode_image;
use model_core::preprocess::{to_model_input, CellCrop};
use model_core::weights::{ModelFiles, MODEL_STEM};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One test cell of each class.
fn test_cells() -> Vec<CellCrop> {
    let data = root().join("../shared/data");
    let rows = manifest_rows(&data, Split::Test).expect("manifest");
    (0..8)
        .map(|class| {
            let (path, _) = rows
                .iter()
                .find(|r| r.1 == class)
                .expect("a cell of the class");
            let bytes = std::fs::read(data.join(path)).expect("read");
            to_model_input(&decode_image(&bytes).expect("decode"), 64)
        })
        .collect()
}

#[test]
fn cpu_and_wgpu_backends_agree_on_the_shipped_model() {
    let gpu = Device::wgpu_options().init().expect(
        "no wgpu adapter: install a Vulkan driver (CI uses mesa-vulkan-drivers) or run on a GPU",
    );
    let files = ModelFiles::read(&root().join("static/model"), MODEL_STEM).expect("model files");
    let cpu_clf = files.classifier(Device::flex()).expect("cpu model");
    let gpu_clf = files.classifier(gpu).expect("gpu model");
    let cells = test_cells();

    // One full round of raw denoiser outputs: every class of every cell.
    let settings = ClassifierSettings {
        test_strictness: f32::INFINITY,
        ..files.card.classifier.clone()
    };
    let mut run = ClassifierRun::new(cells.clone(), 8, settings);
    let inputs = run.next_inputs().expect("a round");
    let a = cpu_clf.predict(&inputs).expect("cpu forward");
    let b = gpu_clf.predict(&inputs).expect("gpu forward");
    assert_eq!(a.len(), b.len());
    assert_eq!(
        a.len(),
        8 * 8 * 3 * 64 * 64,
        "8 cells x 8 classes, 3x64x64 each"
    );
    let max_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("largest |cpu - gpu| of the predicted noise: {max_diff:e}");
    assert!(max_diff < 1e-3, "backends disagree by {max_diff}");

    // Whole diagnoses: same classes and evaluations, probabilities within rounding.
    let dc = cpu_clf.diagnose(cells.clone()).expect("cpu diagnose");
    let dg = gpu_clf.diagnose(cells).expect("gpu diagnose");
    for (c, g) in dc.iter().zip(&dg) {
        assert_eq!(c.class, g.class);
        assert_eq!(c.evals, g.evals);
        let p = c
            .probs
            .iter()
            .zip(&g.probs)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(p < 1e-2, "probabilities differ by {p}");
    }
}
