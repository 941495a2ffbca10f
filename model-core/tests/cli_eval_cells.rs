//! `cytolens eval --cells`: one CSV row per evaluated cell, each row consistent with itself
//! (class = most probable class, probabilities summing to 1) and the rows together giving the
//! report's figures (needs `../shared/data`, as CI has).

mod common;

use common::root;
use std::process::Command;

/// Index of the largest value.
fn argmax(v: &[f64]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
        .expect("non-empty")
}

#[test]
fn eval_writes_one_row_per_cell_that_agrees_with_its_report() {
    let dir = std::env::temp_dir().join(format!("cytolens-cells-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (json, svg, cells, sheet) = (
        dir.join("report.json"),
        dir.join("reliability.svg"),
        dir.join("cells.csv"),
        dir.join("sheet.json"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cytolens"))
        .current_dir(root())
        .args([
            "eval",
            "--split",
            "test",
            "--limit",
            "24",
            "--anomaly-limit",
            "8",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .arg("--cells")
        .arg(&cells)
        .arg("--sheet")
        .arg(&sheet)
        .output()
        .expect("run cytolens");
    assert!(
        out.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    assert_eq!(report["split_size"], 24);

    let mut reader = csv::Reader::from_path(&cells).expect("cells.csv");
    let header = common::csv_header(&mut reader);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let classes = model_core::classes::CLASSES;
    let p_cols: Vec<usize> = classes.iter().map(|c| col(&format!("p_{c}"))).collect();
    let b_cols: Vec<usize> = classes
        .iter()
        .map(|c| col(&format!("baseline_p_{c}")))
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 24);
    let num = |r: &csv::StringRecord, i: usize| r[i].parse::<f64>().expect("number");
    let (mut right, mut base_right, mut evals) = (0usize, 0usize, 0usize);
    // Per class: cells, cells called it, cells called it rightly.
    let mut per_class = vec![(0usize, 0usize, 0usize); classes.len()];
    for r in &rows {
        assert!(
            r[col("path")].starts_with("pbc/128/"),
            "{:?}",
            &r[col("path")]
        );
        let p: Vec<f64> = p_cols.iter().map(|&i| num(r, i)).collect();
        let b: Vec<f64> = b_cols.iter().map(|&i| num(r, i)).collect();
        for probs in [&p, &b] {
            let sum: f64 = probs.iter().sum();
            assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
        }
        let predicted = &r[col("predicted")];
        assert_eq!(predicted, classes[argmax(&p)]);
        assert!((num(r, col("confidence")) - p[argmax(&p)]).abs() < 1e-4);
        assert!(["auto", "review", "anomaly"].contains(&&r[col("triage")]));
        // The shipped card's colour gate scored every cell; a flagged one is an anomaly.
        let colour = num(r, col("colour"));
        assert!(colour.is_finite() && colour >= 0.0, "colour score {colour}");
        match &r[col("unusual_colour")] {
            "0" => {}
            "1" => assert_eq!(&r[col("triage")], "anomaly"),
            other => panic!("unusual_colour {other:?}"),
        }
        right += usize::from(predicted == &r[col("label")]);
        let index = |name: &str| classes.iter().position(|c| *c == name).expect("a class");
        let (truth, called) = (index(&r[col("label")]), index(predicted));
        per_class[truth].0 += 1;
        per_class[called].1 += 1;
        per_class[called].2 += usize::from(truth == called);
        base_right += usize::from(classes[argmax(&b)] == &r[col("label")]);
        evals += r[col("evals")].parse::<usize>().expect("evals");
    }
    let figure = |model: &str, key: &str| report[model][key].as_f64().expect("figure");
    assert!((figure("diffusion", "accuracy") - right as f64 / 24.0).abs() < 1e-9);
    assert!((figure("baseline", "accuracy") - base_right as f64 / 24.0).abs() < 1e-9);
    assert!((figure("diffusion", "mean_evals") - evals as f64 / 24.0).abs() < 1e-9);

    // The viewer's sheet: the same run's figures, tied to the shipped weights.
    let sheet: model_core::model_sheet::ModelSheet =
        serde_json::from_str(&std::fs::read_to_string(&sheet).expect("sheet")).expect("sheet json");
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("static/model/cytolens-diffusion.json"))
            .expect("card"),
    )
    .expect("card json");
    assert_eq!(
        sheet.weights_sha256,
        card["weights_sha256"].as_str().expect("sha")
    );
    assert_eq!(report["model_sha256"], card["weights_sha256"]);
    assert_eq!(sheet.cells, 24);
    assert!(
        sheet.data.contains("a sample of the held-out test split"),
        "{}",
        sheet.data
    );
    assert!((sheet.balanced_accuracy - figure("diffusion", "balanced_accuracy")).abs() < 1e-12);
    assert_eq!(sheet.classes.len(), classes.len());
    for (f, (&name, &(cells, called, hits))) in
        sheet.classes.iter().zip(classes.iter().zip(&per_class))
    {
        assert_eq!((f.class.as_str(), f.cells), (name, cells));
        if cells > 0 {
            assert!(
                (f.recall - hits as f64 / cells as f64).abs() < 1e-12,
                "{f:?}"
            );
        }
        match f.precision {
            Some(p) => assert!((p - hits as f64 / called as f64).abs() < 1e-12, "{f:?}"),
            None => assert_eq!(called, 0, "{f:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cells_file_that_cannot_be_written_is_refused_before_the_evaluation() {
    let missing = std::env::temp_dir()
        .join(format!("cytolens-no-such-dir-{}", std::process::id()))
        .join("cells.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_cytolens"))
        .current_dir(root())
        .args(["eval", "--split", "test", "--limit", "8", "--cells"])
        .arg(&missing)
        .output()
        .expect("run cytolens");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--cells"), "{stderr}");
    // Nothing was classified: the error came before the first cell.
    assert!(!stderr.contains("cytolens-diffusion:"), "{stderr}");
}
