//! White-cell detection in a stained smear field, red-cell and platelet counts, and the scale.
//!
//! Stain-based: in May-Grünwald-Giemsa / Wright stains the nuclei of white cells and the
//! platelets are violet (blue well above green), the background is pale. Nuclear pixels are
//! segmented, lobes of one cell are merged by a closing proportional to the red-cell size, and
//! each large component becomes one white cell whose box is the nucleus box grown to cover the
//! cytoplasm. Small violet components are
//! platelets. The red-cell diameter (from their circular rims, see [`crate::red_cells`]) gives
//! the magnification, so each crop can be resampled to the training data's scale.

use crate::red_cells::red_cells;
use crate::touching::{span, split_nuclei, Lobe, SPLIT_CENTRES_RBC, SPLIT_NUCLEUS_RBC_AREAS};
use image::{GrayImage, Luma, RgbImage};
use imageproc::distance_transform::Norm;
use imageproc::morphology::{close, open};
use imageproc::region_labelling::{connected_components, Connectivity};
use serde::{Deserialize, Serialize};

/// Red-cell diameter as a fraction of the side of a PBC crop (26 px of 128): the median of
/// this detector's own reading ([`crate::red_cells`]) on the 320 PBC originals, whose centre
/// squares are the training crops (0.203; `cargo run --release -p model-core --example
/// pbc_scale`). A smear's cells are cropped at the training data's scale as this detector
/// sees both, so a bias of the reading cancels. (The data's notes say "about 28 px"; the
/// originals' red cells measured on zoomed images agree with the reading, 0.203.)
pub const RBC_PER_CROP: f32 = 26.0 / 128.0;

/// Typical red-cell diameter in micrometres (for the um/px scale).
pub const RBC_DIAMETER_UM: f32 = 7.5;

/// How far a white cell's cytoplasm reaches beyond its nucleus, in red-cell diameters: the
/// nucleus box grown by this much on every side is the cell's box. Chosen on the even-numbered
/// BCCD fields (`cytolens detect-eval`, IoU with the annotated boxes; 0.15 did as well, 0.3,
/// used before, worse), checked on the odd-numbered ones (README, *Cell detection*).
pub const CYTOPLASM_RBC: f32 = 0.2;

/// The largest white-cell nucleus, in red-cell areas: a monocyte or blast of 20 um has a
/// nucleus of up to about 15 um, four red-cell areas; twice that leaves room for two touching
/// nuclei and smudged cells.
pub const MAX_NUCLEUS_RBC_AREAS: f32 = 8.0;

/// The smallest white-cell nucleus, in red-cell areas (after the closing that merges its
/// lobes); smaller violet objects are platelets.
pub const MIN_NUCLEUS_RBC_AREAS: f32 = 0.6;

/// A detected white cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellBox {
    /// `[x0, y0, x1, y1]` in image pixels, exclusive end.
    pub bbox: [u32; 4],
    /// Nucleus area in pixels.
    pub nucleus_area: u32,
}

/// What the detector found in an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmearFindings {
    /// White cells.
    pub cells: Vec<CellBox>,
    /// Red cells counted (circular rims found, see [`crate::red_cells`]).
    pub rbc_count: usize,
    /// Platelets counted.
    pub platelet_count: usize,
    /// Red-cell diameter in pixels the cells were sized by: the user's, else the reading.
    pub rbc_diameter_px: Option<f32>,
    /// The image's own red-cell reading in pixels ([`crate::red_cells`]), whatever the user
    /// chose; `None` when no red cells were found.
    #[serde(default)]
    pub rbc_reading_px: Option<f32>,
    /// Scale estimate in micrometres per pixel.
    pub scale_um_per_px: Option<f32>,
    /// Whether the image is a single-cell crop (like the PBC images) rather than a field.
    pub single_cell: bool,
}

/// Options of the detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOptions {
    /// Red-cell diameter in pixels chosen by the user (overrides the estimate).
    pub rbc_diameter_px: Option<f32>,
}

fn violet(p: &image::Rgb<u8>) -> i32 {
    p.0[2] as i32 - p.0[1] as i32
}

fn mask(img: &RgbImage, f: impl Fn(&image::Rgb<u8>) -> bool) -> GrayImage {
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        Luma([if f(img.get_pixel(x, y)) { 255 } else { 0 }])
    })
}

struct Component {
    area: u32,
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

type Labels = image::ImageBuffer<Luma<u32>, Vec<u32>>;

fn labels(m: &GrayImage) -> Labels {
    connected_components(m, Connectivity::Eight, Luma([0u8]))
}

/// The components of a labelled mask, component `l` at index `l - 1`.
fn components(labels: &Labels) -> Vec<Component> {
    let mut comps: Vec<Component> = Vec::new();
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l.0[0] as usize;
        if l == 0 {
            continue;
        }
        if comps.len() < l {
            comps.resize_with(l, || Component {
                area: 0,
                x0: u32::MAX,
                y0: u32::MAX,
                x1: 0,
                y1: 0,
            });
        }
        let c = &mut comps[l - 1];
        c.area += 1;
        c.x0 = c.x0.min(x);
        c.y0 = c.y0.min(y);
        c.x1 = c.x1.max(x + 1);
        c.y1 = c.y1.max(y + 1);
    }
    comps
}

/// The lobes (components) of a labelled mask, lobe `l` at index `l - 1`.
fn lobes(labels: &Labels) -> Vec<Lobe> {
    let (w, h) = labels.dimensions();
    let mut out: Vec<Lobe> = Vec::new();
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l.0[0];
        if l == 0 {
            continue;
        }
        if out.len() < l as usize {
            out.resize_with(l as usize, Lobe::empty);
        }
        let outside = |dx: i64, dy: i64| {
            let (nx, ny) = (x as i64 + dx, y as i64 + dy);
            nx < 0
                || ny < 0
                || nx >= w as i64
                || ny >= h as i64
                || labels.get_pixel(nx as u32, ny as u32).0[0] != l
        };
        let on_edge = outside(1, 0) || outside(-1, 0) || outside(0, 1) || outside(0, -1);
        out[l as usize - 1].add(x, y, on_edge);
    }
    out
}

/// Find white cells, count red cells and platelets, and estimate the scale.
pub fn detect(img: &RgbImage, opts: &DetectOptions) -> SmearFindings {
    let nuclei = open(
        &mask(img, |p| violet(p) > 45 && (p.0[0] as i32) < 200),
        Norm::LInf,
        1,
    );
    // A white cell's nucleus covers at most about [`MAX_NUCLEUS_RBC_AREAS`] red cells, so the
    // largest violet object bounds the red-cell size from below: on fields whose red cells
    // are faint or smudged, the circle transform otherwise settles on small circles, and at
    // that scale every platelet passes for a nucleus and every lobe for a cell.
    let lobes = lobes(&labels(&nuclei));
    let largest = lobes.iter().map(|l| l.area).max().unwrap_or(0);
    let min_d = (4.0 * largest as f32 / (MAX_NUCLEUS_RBC_AREAS * std::f32::consts::PI)).sqrt();
    let red = red_cells(img, min_d);
    let rbc_est = red.as_ref().map(|r| r.diameter_px);
    let d = opts
        .rbc_diameter_px
        .or(rbc_est)
        .unwrap_or(0.25 * img.width().min(img.height()) as f32);
    // Merge the lobes of a cell: close with a radius of a fifth of a red cell.
    let merged = close(&nuclei, Norm::LInf, (d * 0.2).clamp(2.0, 40.0) as u8);
    let regions = labels(&merged);
    let comps = components(&regions);
    // The lobes of each region (the closing keeps every pixel of the mask, so a lobe lies in
    // the region of any of its pixels).
    let mut region_lobes: Vec<Vec<Lobe>> = vec![Vec::new(); comps.len()];
    for lobe in lobes {
        let Some(&[x, y]) = lobe.edge.first() else {
            continue;
        };
        if let Some(r) = (regions.get_pixel(x, y).0[0] as usize).checked_sub(1) {
            region_lobes[r].push(lobe);
        }
    }
    let rbc_area = std::f32::consts::PI * d * d / 4.0;
    let min_nucleus = MIN_NUCLEUS_RBC_AREAS * rbc_area;
    let mut cells = Vec::new();
    let mut platelets = 0;
    // Grow a nucleus box to the cell.
    let cell = |[x0, y0, x1, y1]: [u32; 4], nucleus_area: u32| {
        let grow = CYTOPLASM_RBC * d;
        CellBox {
            bbox: [
                (x0 as f32 - grow).max(0.0) as u32,
                (y0 as f32 - grow).max(0.0) as u32,
                ((x1 as f32 + grow) as u32).min(img.width()),
                ((y1 as f32 + grow) as u32).min(img.height()),
            ],
            nucleus_area,
        }
    };
    for (c, lobes) in comps.iter().zip(&region_lobes) {
        let a = c.area as f32;
        if a >= min_nucleus {
            let nuclei = split_nuclei(
                lobes,
                SPLIT_NUCLEUS_RBC_AREAS * rbc_area,
                SPLIT_CENTRES_RBC * d,
            );
            if nuclei.len() < 2 {
                cells.push(cell([c.x0, c.y0, c.x1, c.y1], c.area));
                continue;
            }
            // Touching white cells: one cell per nucleus.
            for group in nuclei {
                let (bbox, area) = span(lobes, &group);
                cells.push(cell(bbox, area));
            }
        } else if a >= 0.005 * rbc_area {
            platelets += 1;
        }
    }
    // White cells (nucleus and cytoplasm) are round too: their circles are not red cells.
    let rbc_count = red.map_or(0, |r| {
        r.centres
            .iter()
            .filter(|[x, y]| {
                !cells.iter().any(|c| {
                    let b = c.bbox;
                    *x >= b[0] as f32 && *x < b[2] as f32 && *y >= b[1] as f32 && *y < b[3] as f32
                })
            })
            .count()
    });
    // A single-cell image (like the PBC originals): one white cell, centred (within 6 % of the
    // sides; PBC cells are within 5 %), in an image not much larger than one crop at this
    // magnification. A smear field at high magnification can be barely larger than a crop, but
    // its white cell is rarely that well centred.
    let centred = |c: &CellBox| {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let cx = (c.bbox[0] + c.bbox[2]) as f32 / 2.0;
        let cy = (c.bbox[1] + c.bbox[3]) as f32 / 2.0;
        (cx / w - 0.5).abs() < 0.06 && (cy / h - 0.5).abs() < 0.06
    };
    let single_cell = cells.len() == 1
        && centred(&cells[0])
        && (img.width().min(img.height()) as f32) < 1.3 * d / RBC_PER_CROP;
    SmearFindings {
        cells,
        rbc_count,
        platelet_count: platelets,
        rbc_diameter_px: Some(d),
        rbc_reading_px: rbc_est,
        scale_um_per_px: Some(RBC_DIAMETER_UM / d),
        single_cell,
    }
}

/// Half the side of the box of a white cell marked by hand, in red-cell diameters: a white
/// cell is 1.3 to 2.7 red cells across (10 to 20 um), so a box 1.5 diameters wide covers a
/// typical one (the crop around it, [`crop_square`], is 4.6 diameters wide whatever the box).
pub const MARKED_CELL_HALF_SIDE_RBC: f32 = 0.75;

/// The box of a white cell a reviewer marked at `centre` (`[x, y]` in image pixels), on a
/// `width` x `height` image whose red cells are `rbc_diameter_px` across: centred on the point
/// and clipped to the image, as the detector clips the boxes of cells at the border, so that
/// its crop ([`crop_square`]) is taken the way a detected cell's is. An error when the point
/// lies outside the image or the diameter is not a positive number.
pub fn marked_cell(
    centre: [u32; 2],
    rbc_diameter_px: f32,
    width: u32,
    height: u32,
) -> crate::error::Result<CellBox> {
    let [x, y] = centre;
    if x >= width || y >= height {
        return Err(crate::error::Error::Invalid(format!(
            "the point ({x}, {y}) lies outside the {width}x{height} image"
        )));
    }
    if !(rbc_diameter_px.is_finite() && rbc_diameter_px > 0.0) {
        return Err(crate::error::Error::Invalid(format!(
            "red-cell diameter {rbc_diameter_px} px: a positive number is needed to size the cell"
        )));
    }
    let half = (MARKED_CELL_HALF_SIDE_RBC * rbc_diameter_px)
        .round()
        .max(1.0) as u32;
    Ok(CellBox {
        bbox: [
            x.saturating_sub(half),
            y.saturating_sub(half),
            (x + half).min(width),
            (y + half).min(height),
        ],
        nucleus_area: 0,
    })
}

/// The square a cell is cropped from, `(x0, y0, side)` in image pixels (it may leave the
/// image): centred on the box, side = red-cell diameter / [`RBC_PER_CROP`], the training data's
/// magnification. The model's per-pixel maps of the cell cover this square.
pub fn crop_square(bbox: [u32; 4], rbc_diameter_px: f32) -> (i64, i64, i64) {
    let side = (rbc_diameter_px / RBC_PER_CROP).round().max(8.0) as i64;
    let cx = (bbox[0] + bbox[2]) as i64 / 2;
    let cy = (bbox[1] + bbox[3]) as i64 / 2;
    (cx - side / 2, cy - side / 2, side)
}

/// The square crop around a cell ([`crop_square`]), padded with the image's edge pixels where
/// it leaves the image.
pub fn cell_crop(img: &RgbImage, cell: &CellBox, rbc_diameter_px: f32) -> RgbImage {
    padded_crop(img, crop_square(cell.bbox, rbc_diameter_px))
}

/// The square `(x0, y0, side)` of `img` (image pixels), padded with the image's edge pixels
/// where it leaves the image.
pub fn padded_crop(img: &RgbImage, (x0, y0, side): (i64, i64, i64)) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    RgbImage::from_fn(side as u32, side as u32, |x, y| {
        let sx = (x0 + x as i64).clamp(0, w - 1);
        let sy = (y0 + y as i64).clamp(0, h - 1);
        *img.get_pixel(sx as u32, sy as u32)
    })
}

/// Intersection over union of two boxes.
pub fn iou(a: [u32; 4], b: [u32; 4]) -> f32 {
    let ix = a[2].min(b[2]).saturating_sub(a[0].max(b[0])) as f32;
    let iy = a[3].min(b[3]).saturating_sub(a[1].max(b[1])) as f32;
    let inter = ix * iy;
    let area = |r: [u32; 4]| ((r[2] - r[0]) * (r[3] - r[1])) as f32;
    inter / (area(a) + area(b) - inter).max(1.0)
}

/// Greedy one-to-one matching at `threshold` IoU, in the order of `pred`: for each predicted
/// box, the index of the truth it matched, if any.
pub fn match_pairs(pred: &[[u32; 4]], truth: &[[u32; 4]], threshold: f32) -> Vec<Option<usize>> {
    let mut used = vec![false; truth.len()];
    pred.iter()
        .map(|p| {
            let (i, v) = truth
                .iter()
                .enumerate()
                .filter(|(i, _)| !used[*i])
                .map(|(i, t)| (i, iou(*p, *t)))
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            (v >= threshold).then(|| {
                used[i] = true;
                i
            })
        })
        .collect()
}

/// Greedy one-to-one matching at `threshold` IoU ([`match_pairs`]): `(true positives,
/// predictions, truths)`.
pub fn match_boxes(pred: &[[u32; 4]], truth: &[[u32; 4]], threshold: f32) -> (usize, usize, usize) {
    let tp = match_pairs(pred, truth, threshold).iter().flatten().count();
    (tp, pred.len(), truth.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paint a disc of colour `c` on `img` (clipped to it).
    fn disc(img: &mut RgbImage, cx: i32, cy: i32, r: i32, c: [u8; 3]) {
        for y in (cy - r)..=(cy + r) {
            for x in (cx - r)..=(cx + r) {
                if (x - cx).pow(2) + (y - cy).pow(2) <= r * r
                    && x >= 0
                    && y >= 0
                    && (x as u32) < img.width()
                    && (y as u32) < img.height()
                {
                    img.put_pixel(x as u32, y as u32, image::Rgb(c));
                }
            }
        }
    }

    /// A synthetic field: pale background, pink discs (red cells), one violet blob (nucleus).
    fn synthetic() -> RgbImage {
        let mut img = RgbImage::from_pixel(400, 300, image::Rgb([235, 225, 220]));
        for (cx, cy) in [(50, 50), (150, 60), (60, 200), (330, 240), (340, 60)] {
            disc(&mut img, cx, cy, 20, [225, 150, 160]);
        }
        disc(&mut img, 220, 160, 30, [210, 190, 215]); // cytoplasm
        disc(&mut img, 215, 155, 17, [110, 50, 160]); // nucleus
        disc(&mut img, 120, 250, 3, [120, 60, 170]); // platelet
        img
    }

    #[test]
    fn finds_the_white_cell_red_cells_and_platelet() {
        let f = detect(
            &synthetic(),
            &DetectOptions {
                rbc_diameter_px: None,
            },
        );
        assert_eq!(f.cells.len(), 1, "{f:?}");
        let b = f.cells[0].bbox;
        assert!(
            b[0] < 200 && b[2] > 230 && b[1] < 140 && b[3] > 170,
            "{b:?}"
        );
        let d = f.rbc_diameter_px.expect("diameter");
        assert!((d - 41.0).abs() < 4.0, "red-cell diameter {d}");
        assert_eq!(f.rbc_count, 5);
        assert_eq!(f.platelet_count, 1);
        assert!(!f.single_cell);
    }

    #[test]
    fn touching_white_cells_are_two_cells() {
        // Two nuclei 28 px in radius, red cells 40 px across: the closing (8 px) merges nuclei
        // 14 px apart into one region. Centres 70 px apart (1.75 red cells) are two cells, one
        // box around each nucleus; 60 px apart (1.5), as close as the lobes of one nucleus, one.
        let field = |apart: i32| {
            let mut img = RgbImage::from_pixel(400, 300, image::Rgb([235, 225, 220]));
            for cx in [150, 150 + apart] {
                disc(&mut img, cx, 150, 28, [110, 50, 160]);
            }
            detect(
                &img,
                &DetectOptions {
                    rbc_diameter_px: Some(40.0),
                },
            )
        };
        let two = field(70);
        assert_eq!(two.cells.len(), 2, "{two:?}");
        // Each box is its nucleus's box grown by 0.2 red cells (8 px); the mask's opening takes
        // the disc's one-pixel tips, so a nucleus spans 123..178 (centre 150 +- 27).
        assert_eq!(two.cells[0].bbox, [115, 115, 186, 186], "{two:?}");
        assert_eq!(two.cells[1].bbox, [185, 115, 256, 186], "{two:?}");
        let one = field(60);
        assert_eq!(one.cells.len(), 1, "{one:?}");
        assert_eq!(one.cells[0].bbox, [115, 115, 246, 186], "{one:?}");
    }

    #[test]
    fn an_empty_field_has_no_cells() {
        let img = RgbImage::from_pixel(200, 200, image::Rgb([235, 225, 220]));
        let f = detect(
            &img,
            &DetectOptions {
                rbc_diameter_px: None,
            },
        );
        assert!(f.cells.is_empty());
        assert_eq!(f.platelet_count, 0);
    }

    #[test]
    fn a_marked_cell_is_centred_on_its_point_and_clipped_to_the_image() {
        let c = marked_cell([200, 150], 40.0, 400, 300).expect("inside");
        assert_eq!(c.bbox, [170, 120, 230, 180]);
        assert_eq!(
            crop_square(c.bbox, 40.0).0 + crop_square(c.bbox, 40.0).2 / 2,
            200
        );
        let edge = marked_cell([10, 295], 40.0, 400, 300).expect("inside");
        assert_eq!(edge.bbox, [0, 265, 40, 300]);
        for (point, d) in [([400, 10], 40.0), ([10, 300], 40.0), ([10, 10], 0.0)] {
            let e = marked_cell(point, d, 400, 300).expect_err("refused");
            assert!(
                e.to_string()
                    .contains(if d > 0.0 { "outside" } else { "diameter" }),
                "{e}"
            );
        }
        assert!(marked_cell([10, 10], f32::NAN, 400, 300).is_err());
    }

    #[test]
    fn iou_and_matching() {
        assert_eq!(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1.0);
        assert!((iou([0, 0, 10, 10], [5, 0, 15, 10]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(
            match_boxes(&[[0, 0, 10, 10], [50, 50, 60, 60]], &[[1, 1, 10, 10]], 0.5),
            (1, 2, 1)
        );
        // One truth matches one box: the second box on it is unmatched.
        assert_eq!(
            match_pairs(
                &[[50, 50, 60, 60], [0, 0, 10, 10], [0, 0, 10, 9]],
                &[[1, 1, 10, 10]],
                0.5
            ),
            [None, Some(0), None]
        );
    }
}
