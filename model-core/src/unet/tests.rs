//! Tests of the denoiser: shapes, conditioning, the shared trunk, carrying over.

use super::*;

/// `b` standard-normal images `[b, 3, side, side]`.
fn random_images(b: usize, side: usize, device: &Device) -> Tensor<4> {
    Tensor::<4>::random(
        [b, 3, side, side],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    )
}

/// A small denoiser (16 px, channels 8 and 16) and two random inputs `[2, 3, 16, 16]`.
fn tiny(device: &Device) -> (DenoiserConfig, Denoiser, Tensor<4>) {
    let cfg = DenoiserConfig::new()
        .with_image_size(16)
        .with_channels(vec![8, 16]);
    let model = cfg.init(device);
    let x = random_images(2, 16, device);
    (cfg, model, x)
}

#[test]
fn forward_keeps_the_image_shape_and_depends_on_the_class() {
    let device = Device::flex();
    let (cfg, model, x) = tiny(&device);
    let a = model.forward(
        x.clone(),
        &[10, 10],
        condition(&[Some(0), Some(0)], 8, &device),
    );
    assert_eq!(a.dims(), [2, 3, 16, 16]);
    let b = model.forward(x, &[10, 10], condition(&[Some(3), None], 8, &device));
    let diff: f32 = (a - b).abs().sum().into_scalar();
    assert!(diff > 0.0, "the class must change the prediction");
    assert!(cfg.flops() > 0);
}

#[test]
fn a_larger_patch_runs_a_double_resolution_input_at_the_same_inner_side() {
    let device = Device::flex();
    // 32 px with patch 4 runs its first level at 8x8, as 16 px with patch 2 does.
    let cfg = DenoiserConfig::new()
        .with_image_size(32)
        .with_patch(4)
        .with_channels(vec![8, 16]);
    cfg.check().expect("a valid architecture");
    let model = cfg.init(&device);
    let x = random_images(2, 32, &device);
    let y = model.forward(x, &[10, 500], condition(&[Some(1), None], 8, &device));
    assert_eq!(y.dims(), [2, 3, 32, 32]);
    let small = DenoiserConfig::new()
        .with_image_size(16)
        .with_channels(vec![8, 16]);
    // Same inner convolutions; only the 3x3 convolutions in and out see 4x the channels.
    let extra = cfg.flops() - small.flops();
    let conv_io = |pin: u64| 2 * 2 * 8 * 8 * pin * 8 * 9;
    assert_eq!(extra, conv_io(48) - conv_io(12));
}

#[test]
fn a_deepened_denoiser_predicts_what_it_did_and_runs_its_new_blocks() {
    let device = Device::flex();
    for class_blocks in [None, Some(1)] {
        let (old_cfg, _, x) = tiny(&device);
        let old_cfg = old_cfg.with_class_blocks(class_blocks);
        let old = old_cfg.init(&device);
        let new_cfg = old_cfg.clone().with_extra_blocks(Some(vec![1, 2]));
        let new = old.clone().deepen(&old_cfg, &new_cfg).expect("deepened");
        assert_eq!(
            new.num_params(),
            new_cfg.init(&device).num_params(),
            "{class_blocks:?}: the deepened model has the new architecture"
        );
        let cond = condition(&[Some(2), None], 8, &device);
        let want = old.forward(x.clone(), &[30, 400], cond.clone());
        let got = new.forward(x.clone(), &[30, 400], cond.clone());
        let worst: f32 = (want.clone() - got).abs().max().into_scalar();
        assert!(worst < 1e-5, "{class_blocks:?}: output moved by {worst}");
        // Each new block is on the path: once its last convolution is no longer zero, the
        // prediction changes (the finest encoder block, the coarsest decoder block).
        let wake = |block: &mut ResBlock| {
            let dims = block.conv2.weight.dims();
            block.conv2.weight = Param::from_tensor(Tensor::ones(dims, &device) * 0.01);
        };
        for part in 0..2 {
            let mut woken = new.clone();
            match part {
                0 => wake(&mut woken.down_extra[0][0]),
                _ => wake(&mut woken.up_extra[0][1]),
            }
            let moved = woken.forward(x.clone(), &[30, 400], cond.clone());
            let diff: f32 = (want.clone() - moved).abs().max().into_scalar();
            assert!(diff > 1e-3, "{class_blocks:?}: block {part} is not run");
        }
        // Each extra block costs one 8- or 16-channel residual block, in the encoder and
        // in the decoder; with the class in the last block, the head pays for its own.
        let res = |c: usize, side: u64| new_cfg.res_flops(c, c, side);
        let extra = res(8, 8) + 2 * res(16, 4);
        assert_eq!(new_cfg.flops() - old_cfg.flops(), 2 * extra);
        if class_blocks.is_some() {
            assert_eq!(new_cfg.head_flops() - old_cfg.head_flops(), res(8, 8));
        }
    }
}

#[test]
fn deepening_refuses_lost_blocks_and_other_changes() {
    let device = Device::flex();
    let (cfg, model, _) = tiny(&device);
    let two = cfg.clone().with_extra_blocks(Some(vec![1, 1]));
    let deep = model.clone().deepen(&cfg, &two).expect("deepened");
    let e = deep.deepen(&two, &cfg).expect_err("fewer blocks");
    assert!(e.to_string().contains("no level may lose"), "{e}");
    let wider = two.clone().with_channels(vec![8, 24]);
    let e = model
        .clone()
        .deepen(&cfg, &wider)
        .expect_err("other change");
    assert!(e.to_string().contains("only the extra blocks"), "{e}");
    let e = cfg
        .with_extra_blocks(Some(vec![1]))
        .check()
        .expect_err("one entry for two levels");
    assert!(e.to_string().contains("one entry per level"), "{e}");
}

/// Each pixel repeated `f x f` times: `[b, c, h, w]` to `[b, c, f h, f w]`.
fn repeat_pixels(x: Tensor<4>, f: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .repeat_dim(3, f)
        .repeat_dim(5, f)
        .reshape([b, c, h * f, w * f])
}

#[test]
fn a_denoiser_carried_to_a_finer_input_predicts_the_upscaled_old_noise() {
    let device = Device::flex();
    let (old_cfg, old, x) = tiny(&device);
    let new_cfg = old_cfg.clone().with_image_size(32).with_patch(4);
    let new = old
        .clone()
        .to_finer_input(&old_cfg, &new_cfg)
        .expect("carried over");
    let cond = condition(&[Some(2), None], 8, &device);
    let want = repeat_pixels(old.forward(x.clone(), &[30, 400], cond.clone()), 2);
    let got = new.forward(repeat_pixels(x.clone(), 2), &[30, 400], cond.clone());
    assert_eq!(got.dims(), [2, 3, 32, 32]);
    let err: f32 = (want - got.clone()).abs().max().into_scalar();
    assert!(
        err < 1e-4,
        "differs from the upscaled old prediction by {err}"
    );
    // On a genuinely finer image the fine pixels matter: not a copy of the old model.
    let fine = random_images(2, 32, &device);
    let moved: f32 = (new.forward(fine, &[30, 400], cond) - got)
        .abs()
        .max()
        .into_scalar();
    assert!(moved > 1e-3);
    // Anything but size and patch changing together is refused.
    for bad in [
        old_cfg.clone().with_image_size(32),
        old_cfg.clone().with_image_size(48).with_patch(4),
        new_cfg.clone().with_embed_dim(64),
    ] {
        let e = old.clone().to_finer_input(&old_cfg, &bad);
        assert!(e.is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn architectures_that_cannot_run_are_refused_with_a_reason() {
    let ok = DenoiserConfig::new();
    ok.check().expect("the default architecture");
    let msg = |c: DenoiserConfig| c.check().expect_err("must be refused").to_string();
    assert!(msg(DenoiserConfig::new().with_patch(3)).contains("not a multiple of the patch"));
    // 64 / 2 = 32 halves at most 5 times; 7 levels need 6 halvings.
    let deep = DenoiserConfig::new().with_channels(vec![8; 7]);
    assert!(msg(deep).contains("multiple of 64"));
    assert!(msg(DenoiserConfig::new().with_channels(vec![])).contains("non-zero widths"));
    assert!(msg(DenoiserConfig::new().with_patch(0)).contains("patch"));
}

#[test]
fn class_blocks_outside_the_decoder_are_refused() {
    for k in [0, 4] {
        let cfg = DenoiserConfig::new().with_class_blocks(Some(k));
        let e = cfg.check().expect_err("must be refused").to_string();
        assert!(e.contains("class_blocks"), "{e}");
    }
    for k in 1..=3 {
        DenoiserConfig::new()
            .with_class_blocks(Some(k))
            .check()
            .expect("a valid late condition");
    }
}

/// Largest absolute difference of two tensors.
fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar()
}

#[test]
fn shared_rows_equal_the_full_forward_on_repeated_images() {
    let device = Device::flex();
    // Rows: image 0 under classes 1, 4 and "no class", image 1 under class 4.
    let source = [0, 0, 0, 1];
    let classes = [Some(1), Some(4), None, Some(4)];
    for class_blocks in [None, Some(1), Some(2)] {
        let cfg = DenoiserConfig::new()
            .with_image_size(16)
            .with_channels(vec![8, 16])
            .with_class_blocks(class_blocks);
        let model = cfg.init(&device);
        let x = random_images(2, 16, &device);
        let cond = condition(&classes, 8, &device);
        let shared = model.forward_shared(x.clone(), &[40, 700], &source, cond.clone());
        let index = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0, 0, 1], [4]), &device);
        let full = model.forward(x.select(0, index), &[40, 40, 40, 700], cond);
        assert_eq!(shared.dims(), [4, 3, 16, 16]);
        let d = max_diff(shared.clone(), full);
        assert!(d < 1e-5, "{class_blocks:?}: shared rows differ by {d}");
        // The class still changes the prediction of the same image.
        let by_class = max_diff(shared.clone().narrow(0, 0, 1), shared.narrow(0, 1, 1));
        assert!(
            by_class > 1e-4,
            "{class_blocks:?}: the class changed nothing"
        );
    }
}

#[test]
fn a_late_condition_leaves_the_encoder_class_free() {
    let device = Device::flex();
    let cfg = DenoiserConfig::new()
        .with_image_size(16)
        .with_channels(vec![8, 16])
        .with_class_blocks(Some(1));
    let model = cfg.init(&device);
    let x = random_images(2, 16, &device);
    let a = model.features(
        x.clone(),
        &[10, 10],
        condition(&[Some(0), Some(0)], 8, &device),
    );
    let b = model.features(x, &[10, 10], condition(&[Some(5), None], 8, &device));
    let d: f32 = (a - b).abs().max().into_scalar();
    assert_eq!(d, 0.0, "the encoder saw the class");
}

#[test]
fn the_head_is_the_part_that_runs_once_per_class() {
    let full = DenoiserConfig::new().with_channels(vec![16, 32, 64, 128]);
    assert_eq!(full.head_flops(), full.flops());
    let heads: Vec<u64> = (1..=4)
        .map(|k| full.clone().with_class_blocks(Some(k)).head_flops())
        .collect();
    assert!(heads.windows(2).all(|w| w[0] < w[1]), "{heads:?}");
    assert!(
        heads[3] < full.flops(),
        "the encoder and middle stay in the trunk"
    );
    // The last block alone at 32x32: convs 48->16 and 16->16 (3x3), the 48->16 skip (1x1),
    // its FiLM, and the output conv 16->12.
    let conv = |cin: u64, cout: u64, k: u64| 2 * 32 * 32 * cin * cout * k * k;
    let film = 2 * 128 * 2 * 16;
    let want = conv(48, 16, 3) + conv(16, 16, 3) + conv(48, 16, 1) + film + conv(16, 12, 3);
    assert_eq!(heads[0], want);
}

#[test]
fn features_are_the_spatial_means_of_each_level_and_differ_between_cells() {
    let device = Device::flex();
    let (_, model, x) = tiny(&device);
    let cond = condition(&[None, None], 8, &device);
    let f = model.features(x.clone(), &[10, 10], cond.clone());
    assert_eq!(f.dims(), [2, 8 + 16 + 16]);
    // The last block of columns is the middle block's output averaged over space.
    let temb = model.time_embedding(&[10, 10], &device);
    let (mid, _) = model.encode(x, model.embedding(temb, cond));
    let want = mid.flatten::<3>(2, 3).mean_dim(2).reshape([2, 16]);
    let got = f.clone().slice([0..2, 24..40]);
    let err: f32 = (want - got).abs().max().into_scalar();
    assert!(err < 1e-6, "middle-block columns differ by {err}");
    let rows: f32 = (f.clone().slice([0..1, 0..40]) - f.slice([1..2, 0..40]))
        .abs()
        .sum()
        .into_scalar();
    assert!(rows > 0.0, "two different cells gave the same features");
}
