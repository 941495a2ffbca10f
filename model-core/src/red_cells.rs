//! Red-cell size and count by a gradient-direction circle Hough transform.
//!
//! Red cells in a smear touch, overlap and have pale centres, so a colour mask merges them into
//! clumps and its components say little about one cell's size. Their outer rims, however, are
//! circular edges whose brightness gradient points outwards (cell darker than the background).
//! Every strong edge pixel votes for a centre one radius `r` against its gradient; at the true
//! radius the votes of a rim pile up on its centre, at other radii they smear into a ring. The
//! radius whose five strongest centres gather the most votes is the red-cell radius (the
//! cells are the most numerous large circular objects), and the peaks at that radius that
//! gather most of a rim are the red cells.
//!
//! The radius with the most votes comes in 5 % steps, and pale centres, overlaps and parts of
//! rims vote nearly as much at nearby radii, so it is used to find the cells. Their size is then
//! read where their rims are: for each cell found, the radius around its centre at which the
//! outward brightness gradient is strongest, and the diameter is twice the median of those
//! radii. Drawn discs are read within 1.5 px; cells of the training lab cropped through the
//! smear path are classified 0.012 better than with the vote's radius (`docs/crop-scale.txt`).

use image::{GrayImage, Luma, RgbImage};
use imageproc::filter::gaussian_blur_f32;
use imageproc::gradients::{horizontal_sobel, vertical_sobel};

/// What the circle transform found.
#[derive(Debug, Clone, PartialEq)]
pub struct RedCells {
    /// Red-cell diameter in pixels of the analysed image.
    pub diameter_px: f32,
    /// Centres `[x, y]` of the red cells found (circles of that diameter), in image pixels.
    pub centres: Vec<[f32; 2]>,
}

/// Longest side the transform works at; larger images are analysed downscaled.
const WORK_SIDE: u32 = 800;

/// Peaks of the accumulator weaker than this fraction of a full rim's length are not cells
/// (an edge is two to three pixels thick, so a clear rim gives more than its length). Chosen on
/// BCCD by `cytolens detect-eval` (count error against the annotations).
const MIN_RIM_FRACTION: f32 = 0.8;

/// Half-width, in accumulator cells (2 px each), of the window that gathers a centre's votes:
/// real rims are not perfect circles.
const WINDOW: usize = 2;

/// Radii tried around a found centre for its rim, as fractions of the voting radius: wide
/// enough for the vote's coarse steps and blurred peaks, short of a neighbour's far rim (three
/// radii away).
const RIM_SEARCH: (f32, f32) = (0.8, 1.6);

/// How far, in working pixels, a rim's centre may lie from the voted one (an accumulator
/// cell is 2 pixels wide, and the voting window blurs it further).
const CENTRE_SLACK: u32 = 2;

/// Rims measured for the size: the strongest distinct cells (the median of this many is
/// steady, and each costs a search over centres and radii).
const RIMS_MEASURED: usize = 15;

/// Angles sampled on each ring around a centre.
const RIM_ANGLES: usize = 64;

/// Sobel gradients of the blurred green channel.
struct Gradients {
    gx: image::ImageBuffer<Luma<i16>, Vec<i16>>,
    gy: image::ImageBuffer<Luma<i16>, Vec<i16>>,
}

impl Gradients {
    fn new(green: &GrayImage) -> Self {
        let blurred = gaussian_blur_f32(green, 1.5);
        Self {
            gx: horizontal_sobel(&blurred),
            gy: vertical_sobel(&blurred),
        }
    }

    /// Median outward radial gradient (robust to the parts of a rim that touch or overlap a
    /// neighbour) on the ring of radius `rho` around `centre`, or
    /// `None` when less than half the ring lies in the image.
    fn ring(&self, centre: [f32; 2], rho: f32) -> Option<f32> {
        let (w, h) = (self.gx.width() as f32, self.gx.height() as f32);
        let mut radial = Vec::with_capacity(RIM_ANGLES);
        for k in 0..RIM_ANGLES {
            let a = k as f32 * std::f32::consts::TAU / RIM_ANGLES as f32;
            let (c, s) = (a.cos(), a.sin());
            let (x, y) = (centre[0] + rho * c, centre[1] + rho * s);
            if x < 0.0 || y < 0.0 || x >= w - 1.0 || y >= h - 1.0 {
                continue;
            }
            radial.push(bilinear(&self.gx, x, y) * c + bilinear(&self.gy, x, y) * s);
        }
        if 2 * radial.len() < RIM_ANGLES {
            return None;
        }
        let mid = radial.len() / 2;
        Some(*radial.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1)
    }

    /// Radius of the rim around `centre` (a cell found by voting at radius `r`, its centre
    /// known to an accumulator cell): the ring on which the outward gradient is strongest,
    /// searched over [`RIM_SEARCH`] in half-pixel steps around the voted centre, then within
    /// two pixels of that radius in quarter-pixel steps around centres up to
    /// [`CENTRE_SLACK`] pixels away.
    fn rim_radius(&self, centre: [f32; 2], r: f32) -> Option<f32> {
        let best_on =
            |c: [f32; 2], from: f32, to: f32, step: f32, best: &mut Option<(f32, f32)>| {
                let mut rho = from;
                while rho <= to {
                    if let Some(v) = self.ring(c, rho) {
                        if best.is_none_or(|(b, _)| v > b) {
                            *best = Some((v, rho));
                        }
                    }
                    rho += step;
                }
            };
        let mut best = None;
        best_on(centre, RIM_SEARCH.0 * r, RIM_SEARCH.1 * r, 0.5, &mut best);
        let (_, first) = best?;
        let slack = CENTRE_SLACK as i32;
        for dy in -slack..=slack {
            for dx in -slack..=slack {
                let c = [centre[0] + dx as f32, centre[1] + dy as f32];
                best_on(c, first - 2.0, first + 2.0, 0.25, &mut best);
            }
        }
        best.map(|(_, rho)| rho)
    }
}

/// `img` at the point `(x, y)`, interpolated between its four neighbouring pixels (which must
/// lie in the image).
fn bilinear(img: &image::ImageBuffer<Luma<i16>, Vec<i16>>, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |dx: u32, dy: u32| img.get_pixel(x0 + dx, y0 + dy).0[0] as f32;
    (p(0, 0) * (1.0 - fx) + p(1, 0) * fx) * (1.0 - fy) + (p(0, 1) * (1.0 - fx) + p(1, 1) * fx) * fy
}

struct Edge {
    x: f32,
    y: f32,
    ux: f32,
    uy: f32,
}

/// Strong edges of the blurred green channel (where red cells contrast most with the
/// background), with their unit gradient directions.
fn edges(g: &Gradients) -> Vec<Edge> {
    let (gx, gy) = (&g.gx, &g.gy);
    let w = gx.width() as usize;
    let mut mags: Vec<f32> = gx
        .pixels()
        .zip(gy.pixels())
        .map(|(a, b)| (a.0[0] as f32).hypot(b.0[0] as f32))
        .collect();
    let mut sorted = mags.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let threshold = sorted[sorted.len() * 85 / 100].max(40.0);
    mags.iter_mut()
        .enumerate()
        .filter(|(_, m)| **m >= threshold)
        .map(|(i, m)| {
            let (x, y) = ((i % w) as u32, (i / w) as u32);
            Edge {
                x: x as f32,
                y: y as f32,
                ux: gx.get_pixel(x, y).0[0] as f32 / *m,
                uy: gy.get_pixel(x, y).0[0] as f32 / *m,
            }
        })
        .collect()
}

/// Accumulator (at half resolution, summed over a `2 * WINDOW + 1` square) of the centres voted for at radius `r`.
fn accumulate(edges: &[Edge], r: f32, w: usize, h: usize) -> Vec<f32> {
    let (aw, ah) = (w / 2 + 1, h / 2 + 1);
    let mut acc = vec![0f32; aw * ah];
    for e in edges {
        // The gradient points from the darker cell towards the pale background: the centre
        // lies against it.
        let cx = e.x - r * e.ux;
        let cy = e.y - r * e.uy;
        if cx >= 0.0 && cy >= 0.0 && (cx as usize) < w && (cy as usize) < h {
            acc[(cy as usize / 2) * aw + cx as usize / 2] += 1.0;
        }
    }
    let mut summed = vec![0f32; aw * ah];
    let k = WINDOW;
    for y in k..ah.saturating_sub(k) {
        for x in k..aw.saturating_sub(k) {
            let mut s = 0.0;
            for dy in 0..2 * k + 1 {
                for dx in 0..2 * k + 1 {
                    s += acc[(y + dy - k) * aw + x + dx - k];
                }
            }
            summed[y * aw + x] = s;
        }
    }
    summed
}

/// Peaks `(votes, x, y)` of `acc` (at least `min` votes, accumulator coordinates), strongest
/// first, each suppressing a disc of `radius` accumulator cells around it.
fn peaks(
    mut acc: Vec<f32>,
    aw: usize,
    radius: usize,
    min: f32,
    limit: usize,
) -> Vec<(f32, usize, usize)> {
    let ah = acc.len() / aw;
    let mut found = Vec::new();
    while found.len() < limit {
        let Some((i, &v)) = acc.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
            break;
        };
        if v < min || v <= 0.0 {
            break;
        }
        let (px, py) = (i % aw, i / aw);
        found.push((v, px, py));
        for y in py.saturating_sub(radius)..(py + radius + 1).min(ah) {
            for x in px.saturating_sub(radius)..(px + radius + 1).min(aw) {
                let (dx, dy) = (x.abs_diff(px), y.abs_diff(py));
                if dx * dx + dy * dy <= radius * radius {
                    acc[y * aw + x] = 0.0;
                }
            }
        }
    }
    found
}

/// Red-cell diameter and count in `img`, or `None` when no radius gives credible circles.
///
/// Radii from 4 px (or half of `min_diameter_px`, if larger) to a quarter of the shorter side
/// are tried in steps of 5 %. `min_diameter_px` rules out sizes that other evidence in the
/// image makes impossible (see [`crate::detect::detect`]); 0 rules out nothing.
pub fn red_cells(img: &RgbImage, min_diameter_px: f32) -> Option<RedCells> {
    let longest = img.width().max(img.height());
    let factor = if longest > WORK_SIDE {
        WORK_SIDE as f32 / longest as f32
    } else {
        1.0
    };
    let green = GrayImage::from_fn(img.width(), img.height(), |x, y| {
        Luma([img.get_pixel(x, y).0[1]])
    });
    let green = if factor < 1.0 {
        image::imageops::resize(
            &green,
            (img.width() as f32 * factor).round().max(1.0) as u32,
            (img.height() as f32 * factor).round().max(1.0) as u32,
            image::imageops::FilterType::Triangle,
        )
    } else {
        green
    };
    let (w, h) = (green.width() as usize, green.height() as usize);
    if w < 16 || h < 16 {
        return None;
    }
    let gradients = Gradients::new(&green);
    let edges = edges(&gradients);
    let max_r = w.min(h) as f32 / 4.0;
    let mut best: Option<(f32, f32)> = None; // (score, radius)
    let mut r = (min_diameter_px * factor / 2.0).max(4.0);
    while r <= max_r {
        let top = peaks(
            accumulate(&edges, r, w, h),
            w / 2 + 1,
            (r / 2.0) as usize,
            0.0,
            5,
        );
        let score = top.iter().map(|p| p.0).sum::<f32>() / top.len().max(1) as f32;
        if top.len() >= 2 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, r));
        }
        r *= 1.05;
    }
    let (_, r) = best?;
    let rim = 2.0 * std::f32::consts::PI * r;
    let cells = peaks(
        accumulate(&edges, r, w, h),
        w / 2 + 1,
        (r / 2.0) as usize,
        MIN_RIM_FRACTION * rim,
        usize::MAX,
    );
    // An accumulator cell covers 2x2 working pixels: take its centre.
    let centres: Vec<[f32; 2]> = cells
        .iter()
        .map(|&(_, x, y)| [(2 * x) as f32 + 1.0, (2 * y) as f32 + 1.0])
        .collect();
    // The rims of the centres with no stronger centre within a radius (a small or sharp rim
    // can leave several peaks inside one cell, each off its centre).
    let mut rims: Vec<f32> = centres
        .iter()
        .enumerate()
        .filter(|&(i, c)| {
            !centres[..i]
                .iter()
                .any(|s| (s[0] - c[0]).hypot(s[1] - c[1]) < r)
        })
        .take(RIMS_MEASURED)
        .filter_map(|(_, &c)| gradients.rim_radius(c, r))
        .collect();
    if rims.is_empty() {
        return None;
    }
    rims.sort_by(|a, b| a.total_cmp(b));
    let rim_r = rims[rims.len() / 2];
    Some(RedCells {
        diameter_px: 2.0 * rim_r / factor,
        centres: centres
            .iter()
            .map(|&[x, y]| [x / factor, y / factor])
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pale field with pink discs of radius `r` (pale centres) on a grid.
    fn field(r: i32, centres: &[(i32, i32)]) -> RgbImage {
        let mut img = RgbImage::from_pixel(400, 300, image::Rgb([235, 225, 220]));
        for &(cx, cy) in centres {
            for y in (cy - r).max(0)..(cy + r + 1).min(300) {
                for x in (cx - r).max(0)..(cx + r + 1).min(400) {
                    let d2 = (x - cx).pow(2) + (y - cy).pow(2);
                    if d2 <= r * r {
                        let pale = d2 < (r * r) / 9;
                        let c = if pale {
                            [225, 190, 195]
                        } else {
                            [215, 140, 150]
                        };
                        img.put_pixel(x as u32, y as u32, image::Rgb(c));
                    }
                }
            }
        }
        img
    }

    #[test]
    fn measures_and_counts_touching_discs() {
        // Six discs of diameter 40, some touching.
        let centres = [
            (60, 60),
            (100, 60),
            (200, 150),
            (240, 150),
            (320, 230),
            (80, 220),
        ];
        let found = red_cells(&field(20, &centres), 0.0).expect("red cells");
        assert!(
            (found.diameter_px - 41.0).abs() < 1.5,
            "diameter {}",
            found.diameter_px
        );
        assert_eq!(found.centres.len(), 6, "{found:?}");
        for c in centres {
            assert!(
                found
                    .centres
                    .iter()
                    .any(|f| (f[0] - c.0 as f32).abs() < 4.0 && (f[1] - c.1 as f32).abs() < 4.0),
                "no centre near {c:?}: {found:?}"
            );
        }
    }

    #[test]
    fn scale_follows_the_cells() {
        let small = red_cells(
            &field(12, &[(50, 50), (150, 50), (250, 200), (80, 200)]),
            0.0,
        )
        .expect("small");
        let large = red_cells(
            &field(30, &[(60, 60), (200, 80), (300, 220), (90, 220)]),
            0.0,
        )
        .expect("large");
        assert!(
            (small.diameter_px - 25.0).abs() < 1.5 && (large.diameter_px - 61.0).abs() < 1.5,
            "{small:?} {large:?}"
        );
    }

    #[test]
    fn circles_below_the_minimum_are_not_red_cells() {
        let small = [(50, 50), (150, 50), (250, 200), (80, 200), (330, 120)];
        let free = red_cells(&field(8, &small), 0.0).expect("small circles");
        assert!((free.diameter_px - 17.0).abs() < 2.0, "{free:?}");
        // The same field when something in it (a nucleus) shows red cells are at least 40 px.
        if let Some(bound) = red_cells(&field(8, &small), 40.0) {
            assert!(bound.diameter_px >= 40.0 - 1.0, "{bound:?}");
        }
    }

    #[test]
    fn a_blank_field_has_no_red_cells() {
        let img = RgbImage::from_pixel(200, 200, image::Rgb([235, 225, 220]));
        assert_eq!(red_cells(&img, 0.0), None);
    }
}
