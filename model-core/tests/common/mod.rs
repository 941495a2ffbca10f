//! Helpers shared by the integration tests (each test crate uses a subset).
#![allow(dead_code)]

use model_core::dataset::{manifest_rows, Split};
use model_core::decode::decode_image;
use model_core::preprocess::{to_model_input, CellCrop};
use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared data beside the repository (`../shared/data`, as CI has it).
pub fn data_root() -> PathBuf {
    root().join("../shared/data")
}

/// Held-out test cells at 64 px with their labels: for every class, the cells at the given
/// fractions `(numerator, denominator)` of that class's rows in manifest order.
pub fn test_cells(fractions: &[(usize, usize)]) -> Vec<(CellCrop, usize)> {
    let data = data_root();
    let rows = manifest_rows(&data, Split::Test).expect("manifest");
    let mut cells = Vec::new();
    for class in 0..8 {
        let of_class: Vec<_> = rows.iter().filter(|r| r.1 == class).collect();
        assert!(!of_class.is_empty(), "no test cell of class {class}");
        for &(num, den) in fractions {
            let path = &of_class[of_class.len() * num / den].0;
            let bytes = std::fs::read(data.join(path)).expect("read test cell");
            cells.push((
                to_model_input(&decode_image(&bytes).expect("decode"), 64),
                class,
            ));
        }
    }
    cells
}

/// A CSV's header row, for looking columns up by name.
pub fn csv_header<R: std::io::Read>(reader: &mut csv::Reader<R>) -> Vec<String> {
    reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect()
}
