//! Property tests with many random inputs (cargo fuzz needs a nightly toolchain, which this
//! project does not install): decoding and detection never panic, whatever the bytes.
//!
//! CI runs the default number of cases; `CYTOLENS_FUZZ_SCALE=N` runs N times as many (the same
//! deterministic sequence, extended), for a longer fuzzing session.

use model_core::decode::decode_image;
use model_core::detect::{detect, DetectOptions};

/// How many times the default number of cases to run (`CYTOLENS_FUZZ_SCALE`, default 1).
fn scale() -> usize {
    std::env::var("CYTOLENS_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .expect("encode");
    out
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    encode(img, image::ImageFormat::Png)
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn jpeg(w: u32, h: u32, rng: &mut Rng) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        let v = rng.next();
        image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("encode");
    out
}

#[test]
fn decoding_mutated_images_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        jpeg(48, 40, &mut rng),
        jpeg(17, 90, &mut rng),
        png(image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(
            20,
            30,
            |x, y| image::Rgba([x as u8 * 9, y as u8 * 7, 90, (x * y) as u8]),
        ))),
        png(image::DynamicImage::ImageRgb16(
            image::ImageBuffer::from_fn(24, 18, |x, y| {
                image::Rgb([x as u16 * 999, y as u16 * 777, 9000])
            }),
        )),
        encode(
            image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(21, 19, |x, y| {
                image::Rgb([x as u8 * 11, y as u8 * 13, 40])
            })),
            image::ImageFormat::Bmp,
        ),
        encode(
            image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(26, 17, |x, y| {
                image::Rgba([x as u8 * 9, 70, y as u8 * 5, 200])
            })),
            image::ImageFormat::WebP,
        ),
    ];
    let mut decoded = 0;
    for i in 0..3000 * scale() {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..(rng.next() % 6 + 1) {
            let k = (rng.next() as usize) % b.len();
            b[k] = rng.next() as u8;
        }
        if rng.next().is_multiple_of(4) {
            let keep = (rng.next() as usize) % b.len();
            b.truncate(keep);
        }
        if let Ok(img) = decode_image(&b) {
            assert!(img.width() >= 16 && img.height() >= 16);
            decoded += 1;
        }
    }
    // Most single-byte mutations of pixel data still decode: the test exercised both paths.
    assert!(decoded > 100, "{decoded}");
    for n in 0..200 {
        let junk: Vec<u8> = (0..n * 7).map(|_| rng.next() as u8).collect();
        assert!(decode_image(&junk).is_err());
    }
}

#[test]
fn detection_on_random_fields_never_panics_and_boxes_stay_inside() {
    let mut rng = Rng(42);
    for _ in 0..60 * scale() {
        let (w, h) = (
            16 + (rng.next() % 300) as u32,
            16 + (rng.next() % 300) as u32,
        );
        let dark = rng.next().is_multiple_of(3);
        let img = image::RgbImage::from_fn(w, h, |_, _| {
            let v = rng.next();
            if dark && v.is_multiple_of(5) {
                image::Rgb([110, 50, 170])
            } else {
                image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
            }
        });
        let f = detect(
            &img,
            &DetectOptions {
                rbc_diameter_px: None,
            },
        );
        for c in &f.cells {
            assert!(c.bbox[0] < c.bbox[2] && c.bbox[1] < c.bbox[3]);
            assert!(c.bbox[2] <= w && c.bbox[3] <= h);
        }
        assert!(f.rbc_diameter_px.is_none_or(|d| d.is_finite() && d > 0.0));
    }
}
