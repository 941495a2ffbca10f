//! CPU/GPU agreement: the shipped model on burn's flex CPU backend and on its wgpu backend gives
//! the same denoiser outputs and the same diagnoses. Built only with `--features gpu`, and then
//! it needs a wgpu adapter: CI installs Mesa's lavapipe (a Vulkan driver on the CPU), which runs
//! the same wgpu/CubeCL kernels a GPU would; on a machine with a GPU the same command tests that
//! GPU. Run: `cargo test --release -p model-core --features gpu --test gpu_agreement`.

mod common;

use burn::prelude::Device;
use common::{root, test_cells};
use model_core::classify::{ClassifierRun, ClassifierSettings};
use model_core::weights::{ModelFiles, MODEL_STEM};

#[test]
fn cpu_and_wgpu_backends_agree_on_the_shipped_model() {
    let gpu = Device::wgpu_options().init().expect(
        "no wgpu adapter: install a Vulkan driver (CI uses mesa-vulkan-drivers) or run on a GPU",
    );
    let files = ModelFiles::read(&root().join("static/model"), MODEL_STEM).expect("model files");
    let cpu_clf = files.classifier(Device::flex()).expect("cpu model");
    let gpu_clf = files.classifier(gpu).expect("gpu model");
    // One held-out test cell of each class.
    let cells: Vec<_> = test_cells(&[(0, 1)]).into_iter().map(|(c, _)| c).collect();

    // One full round of raw denoiser outputs: every class of every cell.
    let settings = ClassifierSettings {
        test_strictness: f32::INFINITY,
        ..files.card.classifier.clone()
    };
    // Every class, plus the "no class" token where the card asks for it in the first rounds.
    let rows_per_cell = 8 + usize::from(settings.uncond_rounds > 0);
    let mut run = ClassifierRun::new(cells.clone(), 8, settings);
    let inputs = run.next_inputs().expect("a round");
    let a = cpu_clf.predict(&inputs).expect("cpu forward");
    let b = gpu_clf.predict(&inputs).expect("gpu forward");
    assert_eq!(a.len(), b.len());
    assert_eq!(
        a.len(),
        8 * rows_per_cell * 3 * 64 * 64,
        "8 cells x {rows_per_cell} conditions, 3x64x64 each"
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
