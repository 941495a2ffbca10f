//! `cytolens classify --json` on bad files: each gets its own `error`, the good one is still
//! classified, and the exit code says something failed.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write");
    p
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

#[test]
fn every_bad_file_gets_a_specific_error_and_the_good_one_is_classified() {
    let dir = std::env::temp_dir().join(format!("cytolens-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = root().join("../shared/data/pbc/128/neutrophil");
    let good = std::fs::read_dir(&good)
        .expect("pbc")
        .next()
        .expect("one file")
        .expect("entry")
        .path();
    let jpeg = std::fs::read(&good).expect("read");
    let files = vec![
        (write(&dir, "empty.jpg", b""), "empty"),
        (
            write(&dir, "text.jpg", b"just some text, renamed"),
            "not a readable image",
        ),
        (
            write(&dir, "truncated.jpg", &jpeg[..jpeg.len() / 3]),
            "truncated",
        ),
        (
            write(
                &dir,
                "tiny.png",
                &png(image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1))),
            ),
            "too small",
        ),
        (dir.join("missing.jpg"), "No such file"),
        (good.clone(), ""),
        (
            write(
                &dir,
                "alpha.png",
                &png(image::DynamicImage::ImageRgba8(
                    image::RgbaImage::from_pixel(64, 64, image::Rgba([200, 100, 150, 128])),
                )),
            ),
            "",
        ),
        (
            write(
                &dir,
                "gray16.png",
                &png(image::DynamicImage::ImageLuma16(
                    image::ImageBuffer::from_pixel(64, 64, image::Luma([30000u16])),
                )),
            ),
            "",
        ),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_cytolens"))
        .current_dir(root())
        .arg("classify")
        .arg("--json")
        .args(files.iter().map(|f| &f.0))
        .output()
        .expect("run cytolens");
    assert!(
        !out.status.success(),
        "the exit code must say something failed"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines.len(),
        files.len(),
        "one line per file, in order:\n{stdout}"
    );
    for (line, (path, expect)) in lines.iter().zip(&files) {
        assert_eq!(line["file"].as_str(), Some(path.to_string_lossy().as_ref()));
        if expect.is_empty() {
            assert!(line.get("error").is_none(), "{line}");
            for k in [
                "class",
                "probs",
                "confidence",
                "uncertainty",
                "anomaly",
                "triage",
                "evals",
            ] {
                assert!(line.get(k).is_some(), "missing {k} in {line}");
            }
        } else {
            let err = line["error"].as_str().unwrap_or_default();
            assert!(
                err.contains(expect),
                "{path:?}: error '{err}' should mention '{expect}'"
            );
        }
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 of 8 files could not be classified"));
}
