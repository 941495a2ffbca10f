//! Probe of the BCCD domain shift (`docs/bccd-shift.txt`): the shipped model's classes and
//! triage for the white cells detected in every third BCCD field, raw and with each crop's
//! colour moments (per channel mean and standard deviation) matched to those of PBC val cells;
//! and what the same matching does to 428 PBC val cells. Run:
//! `cargo run --release -p model-core --example stain_probe`.
mod probe;

use model_core::preprocess::CellCrop;

/// Per channel (mean, standard deviation) of a crop.
fn stats(c: &CellCrop) -> [(f32, f32); 3] {
    let n = c.size * c.size;
    std::array::from_fn(|ch| {
        let v = &c.pixels[ch * n..(ch + 1) * n];
        let m = v.iter().sum::<f32>() / n as f32;
        let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / n as f32).sqrt();
        (m, s)
    })
}

/// The mean of the crops' per channel statistics.
fn mean_stats<'a>(crops: impl ExactSizeIterator<Item = &'a CellCrop>) -> [(f32, f32); 3] {
    let n = crops.len() as f32;
    crops.map(stats).fold([(0.0, 0.0); 3], |acc, s| {
        std::array::from_fn(|ch| (acc[ch].0 + s[ch].0 / n, acc[ch].1 + s[ch].1 / n))
    })
}

/// Crop `c` with its colour moments moved to `target` (all the way for `k` = 1).
fn normalise(c: &CellCrop, target: &[(f32, f32); 3], k: f32) -> CellCrop {
    let n = c.size * c.size;
    let st = stats(c);
    let mut p = c.pixels.clone();
    for ((&(m, s), &(tm, ts)), plane) in st.iter().zip(target).zip(p.chunks_mut(n)) {
        for x in plane {
            let y = (*x - m) / s.max(1e-3) * ts + tm;
            *x = (k * y + (1.0 - k) * *x).clamp(-1.0, 1.0);
        }
    }
    CellCrop {
        size: c.size,
        pixels: p,
    }
}

fn main() {
    let (clf, names) = probe::shipped();
    let val = probe::pbc_val_crops();
    let target = mean_stats(val.iter().map(|(c, _)| c));
    eprintln!("PBC val target {target:?}");
    let bccd = probe::bccd_crops();
    let bt = mean_stats(bccd.iter());
    eprintln!("BCCD crops {} mean stats {bt:?}", bccd.len());
    for k in [0.0f32, 1.0] {
        let cells: Vec<CellCrop> = val.iter().map(|(c, _)| normalise(c, &target, k)).collect();
        let d = clf.diagnose(cells).expect("diagnose");
        let acc = d
            .iter()
            .zip(&val)
            .filter(|(d, (_, l))| d.class == *l)
            .count() as f32
            / val.len() as f32;
        let cells: Vec<CellCrop> = bccd.iter().map(|c| normalise(c, &target, k)).collect();
        let db = clf.diagnose(cells).expect("diagnose");
        let mut counts = vec![0; names.len()];
        let mut triage = std::collections::BTreeMap::new();
        for x in &db {
            counts[x.class] += 1;
            *triage.entry(x.triage.name()).or_insert(0) += 1;
        }
        println!(
            "k={k}: PBC val acc {acc:.3} (n={}); BCCD {:?} triage {triage:?}",
            val.len(),
            names.iter().zip(&counts).collect::<Vec<_>>()
        );
    }
}
