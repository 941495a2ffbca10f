//! Draws what the red-cell reading sees: the red cells found (circles of the measured diameter,
//! green) and, on a BCCD field, the annotated red-cell boxes (blue); optionally a part of the
//! picture enlarged fourfold.
//! `cargo run --release -p model-core --example rbc_overlay -- FIELD|IMAGE OUT.png [X Y SIDE]`
//! (FIELD: a BCCD field's number, as 100 for BloodImage_00100.jpg; IMAGE: any image file.)
use model_core::bccd::Annotation;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rbc_overlay FIELD|IMAGE OUT.png [X Y SIDE]");
        std::process::exit(2);
    }
    let (path, ann) = match args[1].parse::<usize>() {
        Ok(n) => model_core::bccd::fields(std::path::Path::new("../shared/data"))
            .expect("BCCD fields")
            .into_iter()
            .find(|(p, _)| p.to_string_lossy().contains(&format!("{n:05}")))
            .expect("no BCCD field with that number"),
        Err(_) => (PathBuf::from(&args[1]), Annotation::default()),
    };
    let img = image::open(&path).expect("image").to_rgb8();
    let Some(red) = model_core::red_cells::red_cells(&img, 0.0) else {
        eprintln!("{}: no red cells found", path.display());
        std::process::exit(1);
    };
    let mut out = img.clone();
    for b in &ann.rbc {
        let r =
            imageproc::rect::Rect::at(b[0] as i32, b[1] as i32).of_size(b[2] - b[0], b[3] - b[1]);
        imageproc::drawing::draw_hollow_rect_mut(&mut out, r, image::Rgb([0, 0, 255]));
    }
    for c in &red.centres {
        imageproc::drawing::draw_hollow_circle_mut(
            &mut out,
            (c[0] as i32, c[1] as i32),
            (red.diameter_px / 2.0).round() as i32,
            image::Rgb([0, 160, 0]),
        );
    }
    println!(
        "{}: red-cell diameter {:.1} px, {} found; annotated (median box side) {:?}",
        path.display(),
        red.diameter_px,
        red.centres.len(),
        ann.rbc_diameter(img.width(), img.height())
    );
    if args.len() > 5 {
        let v: Vec<u32> = args[3..6]
            .iter()
            .map(|a| a.parse().expect("X Y SIDE: numbers"))
            .collect();
        let part = image::imageops::crop_imm(&out, v[0], v[1], v[2], v[2]).to_image();
        out = image::imageops::resize(
            &part,
            v[2] * 4,
            v[2] * 4,
            image::imageops::FilterType::Nearest,
        );
    }
    out.save(&args[2]).expect("save");
}
