//! The white-cell classes of the PBC data set, in the fixed order the model uses.

/// Class names, index = model output index.
pub const CLASSES: [&str; 8] = [
    "basophil",
    "eosinophil",
    "erythroblast",
    "ig",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
];

/// Index of a class name, if it is one of [`CLASSES`].
pub fn class_index(name: &str) -> Option<usize> {
    CLASSES.iter().position(|c| *c == name)
}
