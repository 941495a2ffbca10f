//! The BCCD smear fields and their Pascal VOC annotations, for testing detection.

use crate::error::{Error, Result};
use std::path::Path;

/// Annotated boxes of one field.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    /// White-cell boxes `[x0, y0, x1, y1]`.
    pub wbc: Vec<[u32; 4]>,
    /// Red-cell boxes.
    pub rbc: Vec<[u32; 4]>,
    /// Platelet boxes.
    pub platelets: Vec<[u32; 4]>,
}

impl Annotation {
    /// Annotated red-cell diameter of a `width` x `height` field: the median mean side of the
    /// red-cell boxes that do not touch the border (cut cells would read small). `None` without
    /// such boxes.
    pub fn rbc_diameter(&self, width: u32, height: u32) -> Option<f32> {
        let mut sides: Vec<f32> = self
            .rbc
            .iter()
            .filter(|b| b[0] > 2 && b[1] > 2 && b[2] + 3 < width && b[3] + 3 < height)
            .map(|b| (b[2] - b[0] + b[3] - b[1]) as f32 / 2.0)
            .collect();
        sides.sort_by(|a, b| a.total_cmp(b));
        sides.get(sides.len() / 2).copied()
    }
}

/// Parse a VOC XML annotation.
pub fn parse_voc(xml: &str) -> Result<Annotation> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| Error::Data(format!("VOC XML: {e}")))?;
    let mut a = Annotation::default();
    for obj in doc.descendants().filter(|n| n.has_tag_name("object")) {
        let text = |parent: roxmltree::Node, tag: &str| {
            parent
                .descendants()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(str::trim)
                .map(String::from)
        };
        let name = text(obj, "name").unwrap_or_default();
        let Some(bb) = obj.descendants().find(|n| n.has_tag_name("bndbox")) else {
            continue;
        };
        let v = |t: &str| {
            text(bb, t)
                .and_then(|s| s.parse::<f32>().ok())
                .map(|f| f.max(0.0) as u32)
        };
        let (Some(x0), Some(y0), Some(x1), Some(y1)) = (v("xmin"), v("ymin"), v("xmax"), v("ymax"))
        else {
            continue;
        };
        let b = [x0, y0, x1, y1];
        match name.as_str() {
            "WBC" => a.wbc.push(b),
            "RBC" => a.rbc.push(b),
            "Platelets" => a.platelets.push(b),
            _ => {}
        }
    }
    Ok(a)
}

/// Every field of the data set: `(image path, annotation)`, sorted by name.
pub fn fields(root: &Path) -> Result<Vec<(std::path::PathBuf, Annotation)>> {
    let dir = root.join("bccd/Annotations");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.extension().is_some_and(|e| e == "xml") {
            let xml = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let img = root.join("bccd/JPEGImages").join(format!("{stem}.jpg"));
            if img.exists() {
                out.push((img, parse_voc(&xml)?));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_voc_boxes() {
        let xml = "<annotation><object><name>WBC</name><bndbox><xmin>260</xmin><ymin>177</ymin><xmax>491</xmax><ymax>376</ymax></bndbox></object>\
                   <object><name>RBC</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>";
        let a = parse_voc(xml).expect("parse");
        assert_eq!(a.wbc, vec![[260, 177, 491, 376]]);
        assert_eq!(a.rbc.len(), 1);
        assert!(parse_voc("<not xml").is_err());
    }
}
