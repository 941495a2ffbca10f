//! Safe decoding of user images: a clear error for every bad input, size limits checked from
//! the header before any pixel buffer is allocated (decompression bombs), EXIF orientation
//! honoured, alpha composited on white and 16-bit reduced to 8-bit RGB (each change reported
//! as a note for the user), grayscale refused (the stain colours carry the diagnosis).

use crate::error::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Largest image accepted, in pixels (40 megapixels: 4x a typical microscope camera frame;
/// about 160 MB of RGBA while decoding).
pub const MAX_PIXELS: u64 = 40_000_000;

/// Smallest side that can hold a cell.
pub const MIN_SIDE: u32 = 16;

/// The formats read, as the user is told them. JPEG, PNG and TIFF are what microscope cameras
/// and slide scanners export; BMP is what older capture software saves; WebP is what a
/// browser's "save image" often gives. GIF (256 colours) would lose the stain's shades.
pub const FORMATS: &str = "JPEG, PNG, TIFF, BMP or WebP";

/// File name extensions of [`FORMATS`] (lower case, without the dot): how the CLI picks the
/// images out of a folder, and what the page's file picker offers.
pub const EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp"];

/// The formats the page hands to the browser's own decoder ([`BrowserFormat`]), as the user is
/// told them.
pub const BROWSER_FORMATS: &str = "AVIF, HEIC or JPEG XL";

/// File name extensions of [`BROWSER_FORMATS`]: what the page's file picker offers besides
/// [`EXTENSIONS`] (the CLI, which has no browser, does not pick them out of a folder).
pub const BROWSER_EXTENSIONS: &[&str] = &["avif", "heic", "heif", "jxl"];

/// Whether `path`'s extension is one of [`EXTENSIONS`] (in any case).
pub fn has_image_extension(path: &std::path::Path) -> bool {
    extension_in(path, EXTENSIONS)
}

/// Whether `path`'s extension is one of [`BROWSER_EXTENSIONS`] (in any case): a photo the CLI
/// cannot read, which it names rather than skips when it picks the images out of a folder.
pub fn has_browser_extension(path: &std::path::Path) -> bool {
    extension_in(path, BROWSER_EXTENSIONS)
}

fn extension_in(path: &std::path::Path, list: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| list.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Whether [`decode_image`] reads this format.
fn supported(format: image::ImageFormat) -> bool {
    use image::ImageFormat::*;
    matches!(format, Jpeg | Png | Tiff | Bmp | WebP)
}

/// A decoded image and what was changed to make it 8-bit RGB.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels.
    pub image: RgbImage,
    /// What the user should know about the conversion (transparency, bit depth, rotation).
    pub notes: Vec<String>,
}

/// Decode image bytes (any of [`FORMATS`]) to 8-bit RGB.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage> {
    decode_with_notes(bytes).map(|d| d.image)
}

/// Decode image bytes (any of [`FORMATS`]) to 8-bit RGB, with notes on what was converted.
pub fn decode_with_notes(bytes: &[u8]) -> Result<Decoded> {
    if bytes.is_empty() {
        return Err(Error::EmptyFile);
    }
    if let Some(format) = browser_format(bytes) {
        return Err(Error::NotAnImage(format!(
            "{} is not supported: save it as JPEG (expected {FORMATS})",
            format.name
        )));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::NotAnImage(e.to_string()))?;
    let format = reader
        .format()
        .ok_or_else(|| Error::NotAnImage(format!("unrecognised format (expected {FORMATS})")))?;
    if !supported(format) {
        return Err(Error::NotAnImage(format!(
            "{format:?} is not supported (expected {FORMATS})"
        )));
    }
    if format == image::ImageFormat::Jpeg && !has_jpeg_end(bytes) {
        return Err(Error::NotAnImage(
            "the file is truncated or damaged (JPEG without its end-of-image marker)".into(),
        ));
    }
    if format == image::ImageFormat::WebP && riff_is_cut(bytes) {
        return Err(Error::NotAnImage(
            "the file is truncated or damaged (WebP shorter than its header says)".into(),
        ));
    }
    // The size from the header alone, before any decoder allocates for it.
    // The PNG header is read by hand: on 32-bit targets (the browser) the decoder itself
    // refuses a huge PNG with a bare "memory limit" error that would not say why.
    let (width, height) = match png_dimensions(bytes) {
        Some(dims) => dims,
        None => {
            let mut header = ImageReader::with_format(Cursor::new(bytes), format);
            header.no_limits(); // reads the header only: the limits apply to the decoder below
            header
                .into_dimensions()
                .map_err(|e| Error::NotAnImage(truncation_hint(e.to_string())))?
        }
    };
    check_size(width, height)?;
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8 + (64 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Error::NotAnImage(truncation_hint(e.to_string())))?;
    let colour = decoder.color_type();
    if !colour.has_color() {
        return Err(Error::Grayscale);
    }
    let mut notes = Vec::new();
    if colour.bytes_per_pixel() / colour.channel_count() > 1 {
        notes.push(format!(
            "{}-bit samples were reduced to 8-bit",
            8 * colour.bytes_per_pixel() / colour.channel_count()
        ));
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| Error::NotAnImage(truncation_hint(e.to_string())))?;
    if let Some(o) = orientation.filter(|o| *o != image::metadata::Orientation::NoTransforms) {
        img.apply_orientation(o);
        notes.push(format!("rotated as its EXIF orientation says ({o:?})"));
    }
    notes.extend(transparency_note(&img));
    Ok(Decoded {
        image: flatten_on_white(img),
        notes,
    })
}

/// A photo format the image crate does not read but a browser may: phones' HEIC, AVIF and
/// JPEG XL. [`decode_with_notes`] refuses it by name; the page hands it to the browser's own
/// decoder (Safari reads HEIC and JPEG XL, every current browser AVIF) and takes its pixels
/// through [`from_rgba`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrowserFormat {
    /// What the user is told the file is ("HEIC (a phone's photo)").
    pub name: &'static str,
    /// Its MIME type, for the browser's decoder.
    pub mime: &'static str,
}

/// The [`BrowserFormat`] of `bytes`, told from its signature: an ISO media file's `ftyp` major
/// brand (HEIC, HEIF, AVIF; an MP4 is not an image), or JPEG XL's codestream or container
/// signature; `None` for anything else.
pub fn browser_format(bytes: &[u8]) -> Option<BrowserFormat> {
    const JXL_CONTAINER: &[u8] = b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a";
    let format = |name, mime| Some(BrowserFormat { name, mime });
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(JXL_CONTAINER) {
        return format("JPEG XL", "image/jxl");
    }
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    match bytes.get(8..12)? {
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => {
            format("HEIC (a phone's photo)", "image/heic")
        }
        b"mif1" | b"msf1" => format("HEIF", "image/heif"),
        b"avif" | b"avis" => format("AVIF", "image/avif"),
        _ => None,
    }
}

/// Refuse an image whose sides are out of bounds: more than [`MAX_PIXELS`] in all, or a side
/// under [`MIN_SIDE`]. Checked from a header (or a browser's decoded bitmap) before the pixels
/// are taken.
pub fn check_size(width: u32, height: u32) -> Result<()> {
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(Error::TooLarge {
            width,
            height,
            limit: (MAX_PIXELS / 1_000_000) as u32,
        });
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(Error::TooSmall {
            width,
            height,
            min: MIN_SIDE,
        });
    }
    Ok(())
}

/// An image decoded elsewhere (by the browser, for a [`BrowserFormat`]) as 8-bit RGBA, row by
/// row (`rgba.len() == 4 * width * height`), made what [`decode_with_notes`] gives: the same
/// size limits, grayscale refused (every pixel's channels equal: the browser gives a gray
/// image as RGBA), transparency flattened onto white with its note.
pub fn from_rgba(width: u32, height: u32, rgba: Vec<u8>) -> Result<Decoded> {
    check_size(width, height)?;
    let got = rgba.len();
    let image = image::RgbaImage::from_raw(width, height, rgba).ok_or_else(|| {
        Error::NotAnImage(format!(
            "the decoder gave {got} bytes for {width}x{height} RGBA pixels"
        ))
    })?;
    if image.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]) {
        return Err(Error::Grayscale);
    }
    let img = DynamicImage::ImageRgba8(image);
    let notes = transparency_note(&img).into_iter().collect();
    Ok(Decoded {
        image: flatten_on_white(img),
        notes,
    })
}

/// Width and height from a PNG's IHDR chunk (always the first chunk), if this is a PNG.
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    (bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16)? == b"IHDR")
        .then(|| Some((be(16)?, be(20)?)))
        .flatten()
}

/// Whether a JPEG ends with its end-of-image marker (FF D9), allowing up to 4 kB of trailing
/// bytes some cameras append. The decoder would otherwise grey-fill a truncated file silently.
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Whether a RIFF file (WebP) holds fewer bytes than its header's size field says: the WebP
/// decoder reports a cut file only as a "corrupt bitstream".
fn riff_is_cut(bytes: &[u8]) -> bool {
    let declared = bytes
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map(|b| u32::from_le_bytes(b) as usize + 8);
    declared.is_some_and(|n| bytes.len() < n)
}

fn truncation_hint(msg: String) -> String {
    let lower = msg.to_lowercase();
    if lower.contains("eof")
        || lower.contains("end of file")
        || lower.contains("unexpected end")
        || lower.contains("truncated")
        || lower.contains("not enough bytes")
        || lower.contains("failed to fill whole buffer")
    {
        format!("the file is truncated or damaged ({msg})")
    } else {
        msg
    }
}

/// A note for an image with pixels that are not fully opaque (which [`flatten_on_white`]
/// changes); `None` for an image without alpha or with opaque pixels only, as screenshots and
/// canvas exports often are.
fn transparency_note(img: &DynamicImage) -> Option<String> {
    if !img.color().has_alpha() {
        return None;
    }
    let rgba = img.to_rgba8();
    let seen = rgba.pixels().filter(|p| p.0[3] < 255).count();
    (seen > 0).then(|| {
        let share = 100.0 * seen as f64 / (rgba.width() as f64 * rgba.height() as f64);
        format!(
            "{seen} transparent pixels ({share:.1} % of the image) were flattened onto a white \
             background"
        )
    })
}

/// Any colour type to 8-bit RGB; transparent pixels become white (slide background).
pub fn flatten_on_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as f32 / 255.0;
        let mix = |v: u8| (v as f32 * a + 255.0 * (1.0 - a)).round() as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgba};

    fn encode(img: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format)
            .expect("encode");
        out
    }

    fn png(img: DynamicImage) -> Vec<u8> {
        encode(&img, image::ImageFormat::Png)
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(w, h, image::Rgb([200, 100, 150]));
        encode(&DynamicImage::ImageRgb8(img), image::ImageFormat::Jpeg)
    }

    /// A 48x40 image whose every pixel differs from its neighbours (a lossless round trip
    /// must give it back exactly).
    fn pattern() -> RgbImage {
        RgbImage::from_fn(48, 40, |x, y| {
            image::Rgb([(x * 5) as u8, (y * 6) as u8, ((x * 7 + y * 3) % 256) as u8])
        })
    }

    #[test]
    fn bmp_and_webp_are_read_pixel_for_pixel_and_their_damage_is_reported() {
        let want = pattern();
        for format in [image::ImageFormat::Bmp, image::ImageFormat::WebP] {
            let bytes = encode(&DynamicImage::ImageRgb8(want.clone()), format);
            let got = decode_with_notes(&bytes).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(got.image, want, "{format:?}");
            assert!(got.notes.is_empty(), "{format:?}: {:?}", got.notes);
            match decode_image(&bytes[..bytes.len() / 2]) {
                Err(Error::NotAnImage(m)) => assert!(m.contains("truncated"), "{format:?}: {m}"),
                other => panic!("truncated {format:?} gave {other:?}"),
            }
        }
        // A BMP with transparency (32-bit) is flattened like a PNG's.
        let rgba = ImageBuffer::from_pixel(32, 32, Rgba([0u8, 0, 0, 0]));
        let bmp = encode(&DynamicImage::ImageRgba8(rgba), image::ImageFormat::Bmp);
        let out = decode_with_notes(&bmp).expect("32-bit bmp");
        assert_eq!(out.image.get_pixel(4, 4).0, [255, 255, 255]);
        assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
    }

    #[test]
    fn image_extensions_are_told_in_any_case() {
        use std::path::Path;
        for yes in ["a.jpg", "b/c.JPEG", "d.Tif", "e.webp", "f.BMP", "g.png"] {
            assert!(has_image_extension(Path::new(yes)), "{yes}");
        }
        for no in [
            "a.txt",
            "b.xml",
            "jpg",
            "c.gif",
            "d.jpg.part",
            ".png/x",
            "p.heic",
        ] {
            assert!(!has_image_extension(Path::new(no)), "{no}");
        }
        for phone in ["p.HEIC", "q.heif", "r.avif", "s.JXL"] {
            assert!(has_browser_extension(Path::new(phone)), "{phone}");
            assert!(!has_image_extension(Path::new(phone)), "{phone}");
        }
        assert!(!has_browser_extension(Path::new("a.jpg")));
    }

    #[test]
    fn a_phone_photo_in_heic_is_named() {
        let mut heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic".to_vec();
        heic.extend([7u8; 500]);
        match decode_image(&heic) {
            Err(Error::NotAnImage(m)) => {
                assert!(m.starts_with("HEIC (a phone's photo) is not supported: save it as JPEG"));
                assert!(m.contains(FORMATS), "{m}");
            }
            other => panic!("HEIC gave {other:?}"),
        }
        let mut avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00".to_vec();
        avif.extend([7u8; 100]);
        assert!(matches!(decode_image(&avif), Err(Error::NotAnImage(m)) if m.starts_with("AVIF")));
        let jxl = [&[0xFFu8, 0x0A][..], &[7u8; 100]].concat();
        assert!(
            matches!(decode_image(&jxl), Err(Error::NotAnImage(m)) if m.starts_with("JPEG XL"))
        );
        // Each is handed to the browser with its MIME type.
        let mime = |b: &[u8]| browser_format(b).map(|f| f.mime);
        assert_eq!(mime(&heic), Some("image/heic"));
        assert_eq!(mime(&avif), Some("image/avif"));
        assert_eq!(mime(&jxl), Some("image/jxl"));
        let container = b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a\x00\x00\x00\x14ftypjxl ";
        assert_eq!(mime(container), Some("image/jxl"));
        // An MP4 is another ISO media file, not a photo format: left to the generic message.
        let mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2";
        assert!(
            matches!(decode_image(mp4), Err(Error::NotAnImage(m)) if m.starts_with("unrecognised"))
        );
        assert_eq!(mime(mp4), None);
        for readable in [jpeg(20, 20), png(DynamicImage::ImageRgb8(pattern()))] {
            assert_eq!(browser_format(&readable), None);
        }
        assert_eq!(browser_format(b"GIF89a\x20\x00\x20\x00"), None);
    }

    #[test]
    fn pixels_decoded_by_the_browser_get_the_same_checks_and_conversions() {
        let rgba = |img: &RgbImage, alpha: u8| -> Vec<u8> {
            img.pixels()
                .flat_map(|p| [p.0[0], p.0[1], p.0[2], alpha])
                .collect()
        };
        let want = pattern();
        let got = from_rgba(48, 40, rgba(&want, 255)).expect("opaque pixels");
        assert_eq!(got.image, want);
        assert!(got.notes.is_empty(), "{:?}", got.notes);
        // Half transparent everywhere: flattened onto white, with the note.
        let got = from_rgba(48, 40, rgba(&want, 0)).expect("transparent pixels");
        assert_eq!(got.image.get_pixel(3, 3).0, [255, 255, 255]);
        assert_eq!(
            got.notes,
            ["1920 transparent pixels (100.0 % of the image) were flattened onto a white background"]
        );
        let gray = vec![90u8; 32 * 32 * 4];
        assert!(matches!(from_rgba(32, 32, gray), Err(Error::Grayscale)));
        assert!(matches!(
            from_rgba(8, 40, vec![0; 8 * 40 * 4]),
            Err(Error::TooSmall { width: 8, .. })
        ));
        assert!(matches!(
            from_rgba(9000, 9000, Vec::new()),
            Err(Error::TooLarge { width: 9000, .. })
        ));
        match from_rgba(48, 40, vec![1; 100]) {
            Err(Error::NotAnImage(m)) => assert!(m.contains("100 bytes for 48x40"), "{m}"),
            other => panic!("short buffer gave {other:?}"),
        }
    }

    #[test]
    fn a_format_not_read_is_named_with_the_ones_that_are() {
        // A GIF's signature and logical screen (32x32); the format is told from the signature.
        let gif = b"GIF89a\x20\x00\x20\x00\x00\x00\x00;";
        match decode_image(gif) {
            Err(Error::NotAnImage(m)) => {
                assert!(m.starts_with("Gif is not supported"), "{m}");
                assert!(m.contains(FORMATS), "{m}");
            }
            other => panic!("GIF gave {other:?}"),
        }
    }

    #[test]
    fn every_bad_input_gets_its_own_error() {
        assert!(matches!(decode_image(&[]), Err(Error::EmptyFile)));
        assert!(matches!(
            decode_image(b"hello, I am a text file renamed .jpg"),
            Err(Error::NotAnImage(_))
        ));
        let j = jpeg(64, 64);
        let truncated = &j[..j.len() / 2];
        match decode_image(truncated) {
            Err(Error::NotAnImage(m)) => assert!(m.contains("truncated"), "{m}"),
            other => panic!("truncated JPEG gave {other:?}"),
        }
        let tiny = png(DynamicImage::ImageRgb8(RgbImage::new(1, 1)));
        assert!(matches!(
            decode_image(&tiny),
            Err(Error::TooSmall {
                width: 1,
                height: 1,
                ..
            })
        ));
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // A 30000x30000 grayscale PNG compresses to a few hundred kB of zeros; we never
        // allocate its 900 MB: the header alone is refused.
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, 30000, 30000);
            e.set_color(png::ColorType::Grayscale);
            e.set_depth(png::BitDepth::Eight);
            e.set_compression(png::Compression::High);
            let mut writer = e.write_header().expect("header");
            let mut stream = writer.stream_writer().expect("stream");
            let row = vec![0u8; 30000];
            for _ in 0..30000 {
                std::io::Write::write_all(&mut stream, &row).expect("row");
            }
            stream.finish().expect("finish");
        }
        assert!(out.len() < 2_000_000, "bomb is {} bytes", out.len());
        assert!(matches!(
            decode_image(&out),
            Err(Error::TooLarge {
                width: 30000,
                height: 30000,
                ..
            })
        ));
    }

    #[test]
    fn alpha_and_16_bit_become_rgb_with_a_note_and_grayscale_is_refused() {
        let rgba = ImageBuffer::from_pixel(32, 32, Rgba([0u8, 0, 0, 0]));
        let out = decode_with_notes(&png(DynamicImage::ImageRgba8(rgba))).expect("alpha png");
        assert_eq!(
            out.image.get_pixel(0, 0).0,
            [255, 255, 255],
            "transparent becomes white"
        );
        assert_eq!(
            out.notes,
            ["1024 transparent pixels (100.0 % of the image) were flattened onto a white background"]
        );
        // An alpha channel that is opaque everywhere (screenshots, canvas exports) changes
        // nothing and is not reported.
        let opaque = ImageBuffer::from_pixel(32, 32, Rgba([10u8, 20, 30, 255]));
        let out = decode_with_notes(&png(DynamicImage::ImageRgba8(opaque))).expect("opaque png");
        assert!(out.notes.is_empty(), "{:?}", out.notes);
        assert_eq!(out.image.get_pixel(5, 5).0, [10, 20, 30]);
        let deep: ImageBuffer<image::Rgb<u16>, Vec<u16>> =
            ImageBuffer::from_pixel(32, 32, image::Rgb([65535u16, 0, 0]));
        let out = decode_with_notes(&png(DynamicImage::ImageRgb16(deep))).expect("16-bit png");
        assert_eq!(out.image.get_pixel(3, 3).0, [255, 0, 0]);
        assert_eq!(
            out.notes,
            vec!["16-bit samples were reduced to 8-bit".to_string()]
        );
        let gray = ImageBuffer::from_pixel(32, 32, Luma([77u8]));
        assert!(matches!(
            decode_image(&png(DynamicImage::ImageLuma8(gray))),
            Err(Error::Grayscale)
        ));
        let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_pixel(32, 32, Luma([7u16]));
        assert!(matches!(
            decode_image(&png(DynamicImage::ImageLuma16(gray16))),
            Err(Error::Grayscale)
        ));
        let plain = decode_with_notes(&jpeg(40, 30)).expect("jpeg");
        assert_eq!(plain.image.dimensions(), (40, 30));
        assert!(plain.notes.is_empty(), "{:?}", plain.notes);
    }
}
