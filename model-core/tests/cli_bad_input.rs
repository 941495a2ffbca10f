//! `cytolens classify --json` on bad files: each gets its own `error`, the good one is still
//! classified, and the exit code says something failed.

mod common;

use common::{data_root, root};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// A fresh folder for one test's files.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cytolens-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write");
    p
}

/// Run `cytolens classify --json` with `flags` on `files`: the output, its stdout and its lines.
fn classify_json<P: AsRef<std::ffi::OsStr>>(
    flags: &[&str],
    files: impl IntoIterator<Item = P>,
) -> (std::process::Output, String, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_cytolens"))
        .current_dir(root())
        .args(["classify", "--json"])
        .args(flags)
        .args(files)
        .output()
        .expect("run cytolens");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    (out, stdout, lines)
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

#[test]
fn every_bad_file_gets_a_specific_error_and_the_good_one_is_classified() {
    let dir = temp_dir("bad");
    let good = data_root().join("pbc/128/neutrophil");
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
            "note: 4096 transparent pixels (100.0 % of the image)",
        ),
        (
            write(
                &dir,
                "deep.png",
                &png(image::DynamicImage::ImageRgb16(
                    image::ImageBuffer::from_pixel(64, 64, image::Rgb([30000u16, 9000, 20000])),
                )),
            ),
            "note: 16-bit",
        ),
        (
            write(
                &dir,
                "gray.png",
                &png(image::DynamicImage::ImageLuma8(
                    image::ImageBuffer::from_pixel(64, 64, image::Luma([120u8])),
                )),
            ),
            "grayscale",
        ),
        (write(&dir, "bomb.png", &bomb()), "above the limit"),
    ];
    let (out, stdout, lines) = classify_json(&[], files.iter().map(|f| &f.0));
    assert!(
        !out.status.success(),
        "the exit code must say something failed"
    );
    assert_eq!(
        lines.len(),
        files.len(),
        "one line per file, in order:\n{stdout}"
    );
    for (line, (path, expect)) in lines.iter().zip(&files) {
        assert_eq!(line["file"].as_str(), Some(path.to_string_lossy().as_ref()));
        if let Some(note) = expect.strip_prefix("note: ") {
            let notes = line["notes"].to_string();
            assert!(
                notes.contains(note),
                "{path:?}: notes {notes} should mention '{note}'"
            );
        }
        if expect.is_empty() || expect.starts_with("note: ") {
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
            // The reason names the comparison that decided the triage.
            let why = line["triage_reason"].as_str().unwrap_or_default();
            let word = match line["triage"].as_str() {
                Some("auto") => "at or above the",
                Some("review") => "under the",
                _ => "score",
            };
            assert!(why.contains(word), "triage reason '{why}' in {line}");
        } else {
            let err = line["error"].as_str().unwrap_or_default();
            assert!(
                err.contains(expect),
                "{path:?}: error '{err}' should mention '{expect}'"
            );
        }
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("7 of 10 files could not be classified"));
}

/// A 30000x30000 PNG of zeros: a few hundred kB that would decode to 900 MB.
fn bomb() -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, 30000, 30000);
    e.set_color(png::ColorType::Rgb);
    e.set_compression(png::Compression::High);
    let mut writer = e.write_header().expect("header");
    let mut stream = writer.stream_writer().expect("stream");
    let row = vec![0u8; 3 * 30000];
    for _ in 0..30000 {
        std::io::Write::write_all(&mut stream, &row).expect("row");
    }
    stream.finish().expect("finish");
    drop(writer);
    assert!(out.len() < 4_000_000, "bomb is {} bytes", out.len());
    out
}

#[test]
fn smear_mode_classifies_each_white_cell_and_reports_a_field_without_any() {
    let dir = temp_dir("smear");
    let field = root().join("static/samples/BloodImage_00001.jpg");
    let blank = write(
        &dir,
        "blank.png",
        &png(image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            320,
            240,
            image::Rgb([236, 226, 221]),
        ))),
    );
    let empty = write(&dir, "empty.jpg", b"");
    let (out, stdout, lines) = classify_json(&["--smear"], [&blank, &field, &empty]);
    assert!(!out.status.success());
    assert_eq!(
        lines[0]["error"].as_str(),
        Some("no white cell found in this image")
    );
    assert!(lines.last().expect("lines")["error"]
        .as_str()
        .unwrap_or_default()
        .contains("empty"));
    let cells = &lines[1..lines.len() - 1];
    assert_eq!(cells.len(), 1, "one white cell in the field:\n{stdout}");
    let bbox: Vec<u64> = cells[0]["bbox"]
        .as_array()
        .expect("bbox")
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    assert!(bbox.len() == 4 && bbox[0] < bbox[2] && bbox[2] <= 640 && bbox[3] <= 480);
    assert!(cells[0]["class"].is_string() && cells[0]["triage"].is_string());
}

#[test]
fn an_unknown_training_backend_is_refused_before_any_work() {
    let run = temp_dir("backend").join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_cytolens"))
        .current_dir(root())
        .args(["train", "--backend", "tpu", "--steps", "1", "--run"])
        .arg(&run)
        .output()
        .expect("run cytolens");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--backend 'tpu': expected cpu or wgpu"),
        "{stderr}"
    );
    assert!(!run.exists(), "a refused run must leave no folder behind");
}

#[test]
fn bad_screen_and_colour_gate_settings_are_refused_before_any_work() {
    let dir = temp_dir("screen");
    for (flag, value, says) in [
        ("--screen-keep", "0", "--screen-keep must be at least 1"),
        (
            "--screen-miss",
            "1",
            "--screen-miss must be at least 0 and below 1, not 1",
        ),
        (
            "--colour-quantile",
            "1.5",
            "the colour gate's quantile must be from 0.5 to 1, got 1.5",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cytolens"))
            .current_dir(root())
            .args(["calibrate", "--run"])
            .arg(dir.join("no-such-run"))
            .arg("--out")
            .arg(dir.join("out"))
            .args([flag, value])
            .output()
            .expect("run cytolens");
        assert!(!out.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
        assert!(
            !dir.join("out").exists(),
            "nothing written for {flag} {value}"
        );
    }
}

#[test]
fn the_differential_of_the_classified_cells_ends_the_output() {
    // Two cells of each of four classes, one file that is not an image: the differential counts
    // the eight classified cells as the lines before it say, and the exit code still says a
    // file failed.
    let dir = temp_dir("differential");
    let mut files: Vec<PathBuf> = ["neutrophil", "lymphocyte", "erythroblast", "platelet"]
        .iter()
        .flat_map(|class| {
            std::fs::read_dir(data_root().join("pbc/128").join(class))
                .expect("pbc")
                .take(2)
                .map(|e| e.expect("entry").path())
        })
        .collect();
    files.push(write(&dir, "not-an-image.jpg", b"text"));
    let (out, stdout, lines) = classify_json(&["--differential"], &files);
    assert!(!out.status.success(), "a file failed:\n{stdout}");
    let (summary, rest) = lines.split_last().expect("lines");
    let cells: Vec<&serde_json::Value> = rest.iter().filter(|l| l["error"].is_null()).collect();
    assert_eq!(cells.len(), 8, "{stdout}");
    assert_eq!(summary["cells"], 8);
    let awaiting = cells.iter().filter(|c| c["triage"] != "auto").count();
    assert_eq!(summary["awaiting_review"], awaiting);

    let d = &summary["differential"];
    let counted = |c: &serde_json::Value| -> String {
        if c["unusual_colour"] == true {
            "unusual colour".into()
        } else {
            c["class"].as_str().expect("class").into()
        }
    };
    let leukocytes = model_core::differential::LEUKOCYTES;
    let n = cells
        .iter()
        .filter(|c| leukocytes.contains(&counted(c).as_str()))
        .count();
    assert_eq!(d["leukocytes"], n);
    let rows = d["classes"].as_array().expect("classes");
    assert_eq!(rows.len(), 6, "every leukocyte class");
    let mut total = 0.0;
    for (row, class) in rows.iter().zip(leukocytes) {
        assert_eq!(row["class"], class);
        let k = cells.iter().filter(|c| counted(c) == class).count();
        assert_eq!(row["count"], k, "{class}");
        let pct = row["percent"].as_f64().expect("percent");
        total += pct;
        if n > 0 {
            let iv = row["interval"].as_array().expect("interval");
            let (lo, hi) = (iv[0].as_f64().expect("lo"), iv[1].as_f64().expect("hi"));
            assert!(lo <= pct && pct <= hi && (0.0..=100.0).contains(&lo) && hi <= 100.0);
        }
    }
    if n > 0 {
        assert!((total - 100.0).abs() < 1e-6, "percentages sum to {total}");
    }
    let nrbc = cells
        .iter()
        .filter(|c| counted(c) == "erythroblast")
        .count();
    assert_eq!(d["nucleated_red"], nrbc);
    let others: u64 = d["not_counted"]
        .as_object()
        .expect("not_counted")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(n + nrbc + others as usize, 8, "every cell in one place");
    // The shipped model gets most of these right: the differential is not empty.
    assert!(n >= 3, "{stdout}");
}

#[test]
fn a_folder_stands_for_its_images_in_name_order_and_a_folder_without_any_is_reported() {
    let dir = temp_dir("folder");
    let pbc = data_root().join("pbc/128");
    // 34 cells (more than one group of 32 files) in two subfolders, a text file, a phone's
    // photo and a damaged image among them, and an empty folder named on its own.
    let mut want = Vec::new();
    for (sub, class) in [("a", "lymphocyte"), ("b/deeper", "monocyte")] {
        let to = dir.join(sub);
        std::fs::create_dir_all(&to).expect("sub");
        let mut from: Vec<_> = std::fs::read_dir(pbc.join(class))
            .expect("pbc")
            .map(|e| e.expect("entry").path())
            .collect();
        from.sort();
        for (i, f) in from.iter().take(17).enumerate() {
            let name = if i % 2 == 0 {
                format!("{i:02}.jpg")
            } else {
                format!("{i:02}.JPEG")
            };
            std::fs::copy(f, to.join(&name)).expect("copy");
            want.push(to.join(name));
        }
    }
    write(&dir, "b/readme.txt", b"not an image, skipped in a folder");
    // A phone's photo the CLI cannot read: named with its reason, not skipped.
    let photo = write(
        &dir,
        "b/photo.HEIC",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic and no more",
    );
    want.push(photo.clone());
    let damaged = write(&dir, "b/zz.png", b"\x89PNG\r\n\x1a\n only a signature");
    want.push(damaged.clone());
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("empty");
    let (out, stdout, lines) = classify_json(&[], [&dir, &empty]);
    assert!(!out.status.success(), "two inputs failed");
    let files: Vec<&str> = lines.iter().filter_map(|l| l["file"].as_str()).collect();
    let mut expected: Vec<String> = want.iter().map(|p| p.display().to_string()).collect();
    expected.sort();
    expected.push(empty.display().to_string());
    assert_eq!(files, expected, "{stdout}");
    let errors: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert_eq!(errors.len(), 3, "{stdout}");
    assert_eq!(
        errors[0]["file"].as_str(),
        Some(photo.display().to_string().as_str())
    );
    assert!(errors[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("HEIC (a phone's photo) is not supported: save it as JPEG")));
    assert_eq!(
        errors[1]["file"].as_str(),
        Some(damaged.display().to_string().as_str())
    );
    assert!(errors[2]["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("no image files (JPEG, PNG, TIFF, BMP or WebP)")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 of 37 files could not be classified"));
    // The cells after the first group of 32 get the diagnoses they get on their own.
    for line in &lines[32..34] {
        let file = line["file"].as_str().expect("file");
        let (alone, _, single) = classify_json(&[], [file]);
        assert!(alone.status.success());
        assert_eq!(single, vec![line.clone()]);
    }
}

/// The `rbc_diameter_px` of each line of `lines` that has one.
fn diameters(lines: &[serde_json::Value]) -> Vec<f64> {
    lines
        .iter()
        .filter_map(|l| l["rbc_diameter_px"].as_f64())
        .collect()
}

#[test]
fn a_slide_crops_every_field_at_the_median_reading_and_notes_the_fields_far_from_it() {
    let samples = root().join("static/samples");
    // Each field alone: cropped at its own reading.
    let mut own = Vec::new();
    for f in ["00000", "00001", "00012", "00022", "00037"] {
        let (out, stdout, lines) =
            classify_json(&["--smear"], [samples.join(format!("BloodImage_{f}.jpg"))]);
        assert!(out.status.success(), "{stdout}");
        let d = diameters(&lines);
        assert!(!d.is_empty() && d.iter().all(|x| *x == d[0]), "{stdout}");
        own.push(d[0]);
    }
    let mut sorted = own.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[2];
    // The folder as one slide: every cell at the median, and BloodImage_00001 (red cells in
    // clumps, read far too small) noted.
    let (out, stdout, lines) = classify_json(&["--smear", "--slide"], [&samples]);
    assert!(out.status.success(), "{stdout}");
    let d = diameters(&lines);
    assert!(d.len() >= 5, "{stdout}");
    assert!(
        d.iter().all(|x| (*x - median).abs() < 1e-3),
        "{d:?} against {median}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "slide: red cells {median:.1} px, the median of 5 fields"
        )),
        "{stderr}"
    );
    for (f, reading) in ["00000", "00001", "00012", "00022", "00037"]
        .iter()
        .zip(&own)
    {
        let noted = lines
            .iter()
            .filter(|l| {
                l["file"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&format!("BloodImage_{f}.jpg")))
            })
            .any(|l| l["notes"].to_string().contains("than on this slide"));
        let far = (reading / median - 1.0).abs() > 0.2;
        assert_eq!(noted, far, "BloodImage_{f}: read {reading}, slide {median}");
        if *f == "00001" {
            assert!(
                far,
                "the sample whose red cells lie in clumps reads far off"
            );
        }
    }
    // A diameter set by hand crops every field at it.
    let (out, stdout, lines) = classify_json(&["--smear", "--rbc-diameter", "90"], [&samples]);
    assert!(out.status.success(), "{stdout}");
    let d = diameters(&lines);
    assert!(d.len() >= 5 && d.iter().all(|x| *x == 90.0), "{d:?}");
}

#[test]
fn a_slide_of_too_few_fields_and_scale_options_without_smear_are_refused_before_any_work() {
    let samples = root().join("static/samples");
    let two = [
        samples.join("BloodImage_00000.jpg"),
        samples.join("BloodImage_00012.jpg"),
    ];
    let (out, stdout, _) = classify_json(&["--smear", "--slide"], &two);
    assert!(!out.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--slide needs the red cells of at least 3 fields to be read; 2 of 2"),
        "{stderr}"
    );
    for flags in [
        &["--slide"][..],
        &["--rbc-diameter", "90"],
        &["--smear", "--rbc-diameter", "5"],
        &["--smear", "--rbc-diameter", "ninety"],
        &["--smear", "--slide", "--rbc-diameter", "90"],
    ] {
        let (out, stdout, _) = classify_json(flags, &two);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: a usage error");
        assert!(stdout.is_empty(), "{flags:?}: {stdout}");
    }
}

#[test]
fn csv_gives_the_json_lines_figures_one_row_per_cell_and_a_row_per_failed_file() {
    let samples = root().join("static/samples");
    let dir = temp_dir("csv");
    let bad = write(&dir, "cut.jpg", b"\xFF\xD8\xFF\xE0 a JPEG cut short");
    let args = |format: &str| -> Vec<String> {
        vec![
            "classify".into(),
            format.into(),
            "--smear".into(),
            samples.display().to_string(),
            bad.display().to_string(),
        ]
    };
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_cytolens"))
            .current_dir(root())
            .args(args(format))
            .output()
            .expect("run cytolens")
    };
    let (json_out, csv_out) = (run("--json"), run("--csv"));
    assert!(
        !csv_out.status.success(),
        "a file failed: the exit code says so"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json_out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let mut reader = csv::Reader::from_reader(csv_out.stdout.as_slice());
    let header = common::csv_header(&mut reader);
    assert_eq!(&header[..3], ["file", "x0", "y0"]);
    assert_eq!(header.last().map(String::as_str), Some("error"));
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), lines.len(), "one row per JSON line");
    for (row, line) in rows.iter().zip(&lines) {
        assert_eq!(Some(&row[col("file")]), line["file"].as_str());
        if let Some(e) = line["error"].as_str() {
            assert_eq!(&row[col("error")], e);
            assert_eq!(&row[col("class")], "");
            continue;
        }
        for k in ["class", "triage", "runner_up"] {
            assert_eq!(Some(&row[col(k)]), line[k].as_str(), "{k}");
        }
        assert_eq!(
            row[col("evals")].parse::<u64>().ok(),
            line["evals"].as_u64()
        );
        let bbox: Vec<u64> = ["x0", "y0", "x1", "y1"]
            .iter()
            .map(|k| row[col(k)].parse().expect("box"))
            .collect();
        assert_eq!(serde_json::json!(bbox), line["bbox"]);
        let probs = line["probs"].as_object().expect("probs");
        assert_eq!(probs.len(), 8);
        // Rounded as `eval --cells` rounds them: probabilities to 6 decimals, confidence to 5.
        let close = |k: &str, v: &serde_json::Value, digits: i32| {
            let csv_v: f64 = row[col(k)].parse().expect(k);
            let want = v.as_f64().expect(k);
            let tol = 0.5 * 10f64.powi(-digits) + 1e-9;
            assert!((csv_v - want).abs() <= tol, "{k}: {csv_v} against {want}");
        };
        for (class, p) in probs {
            close(&format!("p_{class}"), p, 6);
        }
        close("confidence", &line["confidence"], 5);
        let flag = line["unusual_colour"].as_bool() == Some(true);
        assert_eq!(&row[col("unusual_colour")], if flag { "1" } else { "0" });
    }
    assert!(rows.iter().any(|r| !r[col("error")].is_empty()));
    assert!(rows.iter().filter(|r| r[col("error")].is_empty()).count() >= 5);
}

#[test]
fn focus_gate_refits_only_the_cards_gate_and_refuses_a_bad_quantile() {
    let dir = temp_dir("focus-gate");
    let stem = "cytolens-diffusion";
    for ext in ["bpk", "json"] {
        std::fs::copy(
            root().join(format!("static/model/{stem}.{ext}")),
            dir.join(format!("{stem}.{ext}")),
        )
        .expect("copy the shipped model");
    }
    let card = |dir: &PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(format!("{stem}.json"))).expect("card"))
            .expect("json")
    };
    let mut before = card(&dir);
    before.as_object_mut().expect("card").remove("focus_gate");
    std::fs::write(dir.join(format!("{stem}.json")), before.to_string()).expect("write");
    let weights = std::fs::read(dir.join(format!("{stem}.bpk"))).expect("weights");
    let run = |q: &str| {
        Command::new(env!("CARGO_BIN_EXE_cytolens"))
            .current_dir(root())
            .args(["focus-gate", "--quantile", q, "--model"])
            .arg(&dir)
            .output()
            .expect("run cytolens")
    };
    let bad = run("0.2");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("the focus gate's quantile must be from 0.5 to 1, got 0.2"));
    assert_eq!(card(&dir), before, "a refused fit leaves the card alone");
    let out = run("0.99");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // About 1 % of the val cells flagged, the rest of the card and the weights unchanged.
    let flagged: usize = stderr
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"));
    assert!((10..=25).contains(&flagged), "{stderr}");
    let mut after = card(&dir);
    let gate = after
        .as_object_mut()
        .expect("card")
        .remove("focus_gate")
        .expect("a focus gate");
    assert_eq!(gate["quantile"].as_f64().map(|q| q as f32), Some(0.99));
    assert!(
        gate["threshold"]
            .as_f64()
            .is_some_and(|t| t < -4.0 && t > -6.0),
        "{gate}"
    );
    assert_eq!(after, before);
    assert_eq!(
        std::fs::read(dir.join(format!("{stem}.bpk"))).expect("weights"),
        weights
    );
}
