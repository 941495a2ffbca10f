//! The red-cell diameter the detector reads on the PBC originals, as a share of the image side,
//! against the crop constant `RBC_PER_CROP` (the training crops are these images' centre squares).
//! `cargo run --release -p model-core --example pbc_scale`
fn main() {
    let files = model_core::dataset::pbc_originals(std::path::Path::new("../shared/data"))
        .expect("pbc/original");
    let mut r = vec![];
    for p in &files {
        let img = image::open(p).expect("image").to_rgb8();
        let f = model_core::detect::detect(
            &img,
            &model_core::detect::DetectOptions {
                rbc_diameter_px: None,
            },
        );
        if let Some(d) = f.rbc_diameter_px {
            r.push(d / img.width().min(img.height()) as f32);
        }
    }
    r.sort_by(|a, b| a.total_cmp(b));
    let n = r.len();
    println!("{n} PBC originals: red-cell diameter / side: q10 {:.3} q25 {:.3} median {:.3} q75 {:.3} q90 {:.3}; RBC_PER_CROP {:.3}",
        r[n / 10], r[n / 4], r[n / 2], r[3 * n / 4], r[9 * n / 10], model_core::detect::RBC_PER_CROP);
}
