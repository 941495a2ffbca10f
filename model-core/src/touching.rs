//! Touching white cells: one nuclear region of the detector ([`crate::detect`]) split into the
//! nuclei of the cells it holds.
//!
//! The detector closes the violet mask to merge the lobes of one nucleus (a segmented
//! neutrophil's, an eosinophil's), and that closing also merges the nuclei of two white cells
//! pressed together. The region's *lobes* (the connected parts of the mask before closing) are
//! grouped by single linkage (the two groups farthest apart are split first, then each group in
//! turn); granules and specks ([`SPECK_SHARE`]) then join the nearest group. A split is kept when each side is a large nucleus on its own (at least
//! [`SPLIT_NUCLEUS_RBC_AREAS`] red-cell areas) and the two sides' centres lie at least
//! [`SPLIT_CENTRES_RBC`] red-cell diameters apart, further than the lobes of one nucleus.
//! Touching small cells (two small lymphocytes, whose nuclei are smaller and closer) are not
//! split: their nuclei are as close as the lobes of a spread eosinophil. Measured on the 320 PBC
//! originals and BCCD's 364 fields (README, *Cell detection*).

/// The least distance between the centres of two nuclei of touching white cells, in red-cell
/// diameters. On the PBC originals and BCCD the touching pairs' nuclear masses lay 1.48-1.91
/// diameters apart, the lobe groups of single cells mostly under 1.2, but the spread lobes of
/// some eosinophils and neutrophils up to 1.56 (at 1.4, five single cells of BCCD were split).
pub const SPLIT_CENTRES_RBC: f32 = 1.6;

/// The least area of each of two nuclei split apart, in red-cell areas: larger than the lobes
/// of one eosinophil or neutrophil (up to 0.9 on PBC and BCCD, and 0.6-0.7 for the detached
/// lobes of spread eosinophils).
pub const SPLIT_NUCLEUS_RBC_AREAS: f32 = 1.0;

/// One lobe: a connected part of the nuclear mask before closing.
#[derive(Debug, Clone, PartialEq)]
pub struct Lobe {
    /// Pixels.
    pub area: u32,
    /// Sum of the pixels' x and y, for the centre.
    pub sum: [f64; 2],
    /// `[x0, y0, x1, y1]`, exclusive end.
    pub bbox: [u32; 4],
    /// Its pixels on the lobe's border (4-neighbour border), for distances between lobes.
    pub edge: Vec<[u32; 2]>,
}

impl Lobe {
    /// A lobe of no pixels, to [`Lobe::add`] them to.
    pub fn empty() -> Self {
        Self {
            area: 0,
            sum: [0.0; 2],
            bbox: [u32::MAX, u32::MAX, 0, 0],
            edge: Vec::new(),
        }
    }

    /// Add the pixel `(x, y)`; `on_edge` when one of its 4 neighbours lies outside the lobe.
    pub fn add(&mut self, x: u32, y: u32, on_edge: bool) {
        self.area += 1;
        self.sum[0] += x as f64;
        self.sum[1] += y as f64;
        self.bbox = [
            self.bbox[0].min(x),
            self.bbox[1].min(y),
            self.bbox[2].max(x + 1),
            self.bbox[3].max(y + 1),
        ];
        if on_edge {
            self.edge.push([x, y]);
        }
    }
}

/// The box (`[x0, y0, x1, y1]`, exclusive end) and area in pixels of the lobes `group` of
/// `lobes` together: a nucleus [`split_nuclei`] found.
pub fn span(lobes: &[Lobe], group: &[usize]) -> ([u32; 4], u32) {
    group
        .iter()
        .map(|&i| &lobes[i])
        .fold(([u32::MAX, u32::MAX, 0, 0], 0), |(b, area), l| {
            (
                [
                    b[0].min(l.bbox[0]),
                    b[1].min(l.bbox[1]),
                    b[2].max(l.bbox[2]),
                    b[3].max(l.bbox[3]),
                ],
                area + l.area,
            )
        })
}

/// Lobes smaller than this share of a nucleus's least area (granules, specks) take no part in
/// the grouping; each joins the group whose centre is nearest.
pub const SPECK_SHARE: f32 = 0.05;

/// A region with more lobes than this (after specks) is a smudge or a clump, not split: this
/// bounds the work (pairs of lobes) and the grouping's depth.
pub const MAX_LOBES: usize = 64;

/// The nuclei among `lobes`, all lobes of one merged region: groups of indices into `lobes`
/// (one group when the region holds one cell), each sorted, in the order of their first lobe.
/// `min_area_px` is the least area of a nucleus, `min_centres_px` the least distance between
/// the centres of two cells' nuclei.
pub fn split_nuclei(lobes: &[Lobe], min_area_px: f32, min_centres_px: f32) -> Vec<Vec<usize>> {
    let all = || vec![(0..lobes.len()).collect::<Vec<_>>()];
    let (large, specks): (Vec<usize>, Vec<usize>) =
        (0..lobes.len()).partition(|&i| lobes[i].area as f32 >= SPECK_SHARE * min_area_px);
    if large.len() < 2 || large.len() > MAX_LOBES {
        return all();
    }
    let kept: Vec<Lobe> = large.iter().map(|&i| lobes[i].clone()).collect();
    let tree = Dendrogram::single_linkage(&kept);
    let parts = tree.cells(tree.root(), &kept, min_area_px, min_centres_px);
    if parts.len() < 2 {
        return all();
    }
    let mut groups: Vec<Vec<usize>> = parts
        .iter()
        .map(|p| p.iter().map(|&k| large[k]).collect())
        .collect();
    let centres: Vec<[f32; 2]> = groups.iter().map(|g| centre(lobes, g)).collect();
    for s in specks {
        let c = centre(lobes, &[s]);
        let nearest = (0..groups.len())
            .min_by(|&i, &j| distance(centres[i], c).total_cmp(&distance(centres[j], c)))
            .unwrap_or(0);
        groups[nearest].push(s);
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups.sort_unstable_by_key(|g| g[0]);
    groups
}

fn distance(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// The closest distance between the borders of two lobes, in pixels.
fn gap(a: &Lobe, b: &Lobe) -> f32 {
    let mut best = u64::MAX;
    for p in &a.edge {
        for q in &b.edge {
            let dx = p[0] as i64 - q[0] as i64;
            let dy = p[1] as i64 - q[1] as i64;
            best = best.min((dx * dx + dy * dy) as u64);
        }
    }
    (best as f32).sqrt()
}

/// A single-linkage tree over lobes: nodes `0..n` are the lobes, node `n + k` the `k`-th merge.
struct Dendrogram {
    leaves: usize,
    children: Vec<[usize; 2]>,
}

impl Dendrogram {
    fn single_linkage(lobes: &[Lobe]) -> Self {
        let n = lobes.len();
        let mut pairs = Vec::with_capacity(n * (n - 1) / 2);
        for i in 0..n {
            for j in i + 1..n {
                pairs.push((gap(&lobes[i], &lobes[j]), i, j));
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Union-find whose roots remember the tree node they stand for.
        let mut parent: Vec<usize> = (0..n).collect();
        let mut node: Vec<usize> = (0..n).collect();
        fn find(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        let mut children = Vec::with_capacity(n - 1);
        for (_, i, j) in pairs {
            let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
            if ri == rj {
                continue;
            }
            children.push([node[ri], node[rj]]);
            parent[rj] = ri;
            node[ri] = n + children.len() - 1;
        }
        Self {
            leaves: n,
            children,
        }
    }

    fn root(&self) -> usize {
        self.leaves + self.children.len() - 1
    }

    fn lobes(&self, node: usize, out: &mut Vec<usize>) {
        if node < self.leaves {
            out.push(node);
        } else {
            for c in self.children[node - self.leaves] {
                self.lobes(c, out);
            }
        }
    }

    fn members(&self, node: usize) -> Vec<usize> {
        let mut out = Vec::new();
        self.lobes(node, &mut out);
        out
    }

    /// The nuclei under `node`: its two sides when each is a nucleus and their centres are far
    /// enough apart (then each side in turn); when one side is too small to be a nucleus (a
    /// fragment or granule), the other side's nuclei with the fragment given to the nearest.
    fn cells(
        &self,
        node: usize,
        lobes: &[Lobe],
        min_area: f32,
        min_centres: f32,
    ) -> Vec<Vec<usize>> {
        if node < self.leaves {
            return vec![vec![node]];
        }
        let [a, b] = self.children[node - self.leaves];
        let (ma, mb) = (self.members(a), self.members(b));
        let (area_a, area_b) = (area(lobes, &ma), area(lobes, &mb));
        if area_a >= min_area && area_b >= min_area {
            let (ca, cb) = (centre(lobes, &ma), centre(lobes, &mb));
            if distance(ca, cb) >= min_centres {
                let mut out = self.cells(a, lobes, min_area, min_centres);
                out.extend(self.cells(b, lobes, min_area, min_centres));
                return out;
            }
        } else {
            let (big, small) = if area_a >= area_b { (a, mb) } else { (b, ma) };
            let mut parts = self.cells(big, lobes, min_area, min_centres);
            if parts.len() > 1 {
                let c = centre(lobes, &small);
                let d = |k: usize| distance(centre(lobes, &parts[k]), c);
                let nearest = (0..parts.len())
                    .min_by(|&i, &j| d(i).total_cmp(&d(j)))
                    .unwrap_or(0);
                parts[nearest].extend(small);
                return parts;
            }
        }
        vec![self.members(node)]
    }
}

fn area(lobes: &[Lobe], group: &[usize]) -> f32 {
    group.iter().map(|&i| lobes[i].area as f32).sum()
}

fn centre(lobes: &[Lobe], group: &[usize]) -> [f32; 2] {
    let (mut sx, mut sy, mut n) = (0f64, 0f64, 0f64);
    for &i in group {
        sx += lobes[i].sum[0];
        sy += lobes[i].sum[1];
        n += lobes[i].area as f64;
    }
    [(sx / n.max(1.0)) as f32, (sy / n.max(1.0)) as f32]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filled disc as a lobe.
    fn disc(cx: i32, cy: i32, r: i32) -> Lobe {
        let inside = |x: i32, y: i32| (x - cx).pow(2) + (y - cy).pow(2) <= r * r;
        let mut lobe = Lobe::empty();
        for y in cy - r..=cy + r {
            for x in cx - r..=cx + r {
                if inside(x, y) {
                    let on_edge = [(1, 0), (-1, 0), (0, 1), (0, -1)]
                        .iter()
                        .any(|(dx, dy)| !inside(x + dx, y + dy));
                    lobe.add(x as u32, y as u32, on_edge);
                }
            }
        }
        lobe
    }

    // Red cells 40 px across (1257 px in area).
    const MIN_AREA: f32 = SPLIT_NUCLEUS_RBC_AREAS * 1256.6;
    const MIN_CENTRES: f32 = SPLIT_CENTRES_RBC * 40.0;

    #[test]
    fn two_touching_nuclei_are_two_cells() {
        let lobes = [disc(100, 100, 25), disc(170, 100, 25)];
        assert!((gap(&lobes[0], &lobes[1]) - 20.0).abs() < 1.0);
        assert_eq!(
            split_nuclei(&lobes, MIN_AREA, MIN_CENTRES),
            [vec![0], vec![1]]
        );
        assert_eq!(span(&lobes, &[0]), ([75, 75, 126, 126], lobes[0].area));
        assert_eq!(
            span(&lobes, &[0, 1]).0,
            [75, 75, 196, 126],
            "the box around both"
        );
        // The same nuclei pressed closer than two cells' centres can be: one cell.
        let close = [disc(100, 100, 25), disc(160, 100, 25)];
        assert_eq!(split_nuclei(&close, MIN_AREA, MIN_CENTRES), [vec![0, 1]]);
    }

    #[test]
    fn the_lobes_of_one_nucleus_stay_one_cell() {
        // Three lobes of a segmented neutrophil, and a spread eosinophil's two lobes, as far
        // apart as two cells' nuclei but each smaller than a red cell.
        let neutrophil = [disc(100, 100, 12), disc(125, 92, 12), disc(150, 100, 12)];
        assert_eq!(
            split_nuclei(&neutrophil, MIN_AREA, MIN_CENTRES),
            [vec![0, 1, 2]]
        );
        let eosinophil = [disc(100, 100, 19), disc(170, 100, 19)];
        assert!(eosinophil[0].area as f32 >= 0.8 * MIN_AREA);
        assert_eq!(
            split_nuclei(&eosinophil, MIN_AREA, MIN_CENTRES),
            [vec![0, 1]]
        );
        assert_eq!(
            split_nuclei(&eosinophil[..1], MIN_AREA, MIN_CENTRES),
            [vec![0]]
        );
    }

    #[test]
    fn granules_go_with_the_nearest_nucleus_and_a_clump_is_not_split() {
        // Two nuclei and granules (specks) between and beside them.
        let mut lobes = vec![disc(100, 100, 25), disc(170, 100, 25)];
        lobes.extend([disc(131, 60, 2), disc(150, 140, 2), disc(215, 100, 2)]);
        assert_eq!(
            split_nuclei(&lobes, MIN_AREA, MIN_CENTRES),
            [vec![0, 2], vec![1, 3, 4]]
        );
        // More lobes than MAX_LOBES: one region, however far apart its parts.
        let clump: Vec<Lobe> = (0..=MAX_LOBES as i32)
            .map(|k| disc(100 + 20 * (k % 10), 100 + 20 * (k / 10), 8))
            .collect();
        assert!(clump[0].area as f32 >= SPECK_SHARE * MIN_AREA);
        assert_eq!(
            split_nuclei(&clump, MIN_AREA, MIN_CENTRES),
            [(0..=MAX_LOBES).collect::<Vec<_>>()]
        );
    }

    #[test]
    fn three_cells_and_a_fragment() {
        // Three nuclei in a row and a small fragment beside the third: the fragment is not a
        // cell of its own, and it goes with the nucleus nearest to it.
        let lobes = [
            disc(310, 100, 5),
            disc(100, 100, 22),
            disc(170, 100, 22),
            disc(240, 100, 22),
        ];
        assert_eq!(
            split_nuclei(&lobes, MIN_AREA, MIN_CENTRES),
            [vec![0, 3], vec![1], vec![2]]
        );
    }
}
