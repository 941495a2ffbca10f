//! In-browser tests (wasm-bindgen-test in headless Chromium): the numeric core runs in the
//! page exactly as in the worker.
#![cfg(target_arch = "wasm32")]

use burn::prelude::*;
use model_core::classify::ClassifierSettings;
use model_core::diagnosis::ModelCard;
use model_core::engine::CellClassifier;
use model_core::preprocess::CellCrop;
use model_core::unet::{condition, DenoiserConfig};
use wasm_bindgen_test::*;
use web::bridge::{decode, encode};
use web::protocol::Request;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn flex_forward_pass_runs_in_the_browser_and_is_deterministic() {
    let device = Device::flex();
    let model = DenoiserConfig::new()
        .with_image_size(16)
        .with_channels(vec![8, 16])
        .init(&device);
    let x = Tensor::<4>::ones([2, 3, 16, 16], &device).mul_scalar(0.3);
    let cond = condition(&[Some(1), None], 8, &device);
    let a: Vec<f32> = model
        .forward(x.clone(), &[5, 500], cond.clone())
        .into_data()
        .try_to_vec()
        .expect("f32");
    let b: Vec<f32> = model
        .forward(x, &[5, 500], cond)
        .into_data()
        .try_to_vec()
        .expect("f32");
    assert_eq!(a.len(), 2 * 3 * 16 * 16);
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(a, b);
}

#[wasm_bindgen_test]
fn the_classifier_runs_end_to_end_in_wasm() {
    let device = Device::flex();
    let cfg = DenoiserConfig::new()
        .with_image_size(16)
        .with_channels(vec![8, 16]);
    let weights = cfg
        .init(&device)
        .into_record()
        .into_bytes()
        .expect("bytes")
        .to_vec();
    let mut card = ModelCard::uncalibrated(cfg);
    card.classifier = ClassifierSettings {
        max_rounds: 4,
        min_rounds: 2,
        stratum_weights: vec![1.0; 4],
        stratum_scale: vec![1.0; 4],
        ..ClassifierSettings::default()
    };
    let clf = CellClassifier::from_bytes(&weights, card, device).expect("weights load");
    let cell = CellCrop {
        size: 16,
        pixels: vec![0.1; 3 * 16 * 16],
    };
    let d = clf.diagnose(vec![cell.clone(), cell]).expect("diagnose");
    assert_eq!(d.len(), 2);
    assert_eq!(d[0], d[1], "same cell, same answer");
    assert!((d[0].probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    assert!(d[0].evals >= 16 && d[0].evals <= 32);
}

#[wasm_bindgen_test]
fn images_decode_in_wasm_and_bad_bytes_are_refused() {
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(20, 30, image::Rgb([9, 8, 7])))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode");
    let img = model_core::decode::decode_image(&png).expect("decode");
    assert_eq!(img.dimensions(), (20, 30));
    assert!(model_core::decode::decode_image(b"not an image").is_err());
}

#[wasm_bindgen_test]
fn worker_messages_round_trip_through_js_values() {
    let req = Request::Analyze {
        id: 7,
        name: "x.jpg".into(),
        rbc_diameter_px: Some(90.0),
    };
    let json = serde_json::to_string(&req).expect("json");
    let (msg, transfer) = encode(&json, Some(&[1, 2, 3]));
    assert_eq!(
        transfer.length(),
        1,
        "the bytes are transferred, not copied"
    );
    let (back, bytes) = decode(&msg.into()).expect("decode");
    assert_eq!(serde_json::from_str::<Request>(&back).expect("parse"), req);
    assert_eq!(bytes, Some(vec![1, 2, 3]));
}
