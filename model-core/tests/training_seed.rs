//! A new training run is reproducible from its seed: the same options give the same weights,
//! another seed other weights. Its own test binary, with one test, because the seeded draw of
//! a new model's weights uses the backend's global generator, which tests running in parallel
//! in one process would share.

use burn::prelude::*;
use model_core::dataset::CellSet;
use model_core::train::{train_denoiser, TrainOptions};
use model_core::unet::{condition, DenoiserConfig};

#[test]
fn the_same_options_train_the_same_weights_and_another_seed_other_ones() {
    let dir = std::env::temp_dir().join(format!("cytolens-seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = CellSet {
        size: 16,
        pixels: (0..4 * 3 * 16 * 16)
            .map(|i| (i % 11) as f32 / 11.0 - 0.5)
            .collect(),
        labels: vec![0, 1, 2, 3],
        paths: vec![String::new(); 4],
    };
    let cfg = DenoiserConfig::new()
        .with_image_size(16)
        .with_channels(vec![8, 16]);
    let opts = TrainOptions {
        steps: 2,
        batch: 2,
        ce_batch: 1,
        model: cfg,
        seed: 5,
        ..TrainOptions::default()
    };
    let device = Device::flex();
    let train = |name: &str, opts: &TrainOptions| {
        train_denoiser(&data, opts, &dir.join(name), false, &device).expect("trained")
    };
    let a = train("a", &opts);
    let b = train("b", &opts);
    let c = train(
        "c",
        &TrainOptions {
            seed: 6,
            ..opts.clone()
        },
    );
    let x = Tensor::<4>::from_data(
        TensorData::new(
            (0..2 * 3 * 16 * 16)
                .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
                .collect::<Vec<f32>>(),
            [2, 3, 16, 16],
        ),
        &device,
    );
    let cond = condition(&[Some(1), None], 8, &device);
    let out = |m: &model_core::unet::Denoiser| m.forward(x.clone(), &[40, 400], cond.clone());
    let diff = |p: Tensor<4>, q: Tensor<4>| (p - q).abs().max().into_scalar::<f32>();
    assert_eq!(diff(out(&a), out(&b)), 0.0, "one seed, two runs");
    assert!(
        diff(out(&a), out(&c)) > 1e-3,
        "another seed, the same weights"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
