//! The leukocyte differential of a set of counted cells, as a haematologist reports it.
//!
//! A manual differential gives each leukocyte class as a percentage of the leukocytes counted
//! (usually 100 or 200), reports nucleated red cells (this model's `erythroblast`) per 100
//! leukocytes rather than among them, and keeps platelets and cells nobody could classify out
//! of the percentages. A percentage of a small count is imprecise (Rümke 1979): the exact
//! binomial (Clopper-Pearson) interval says how much, e.g. 5 monocytes of 100 leukocytes is
//! 1.6-11.3 % at 95 %.

use serde::Serialize;
use statrs::distribution::{Beta, ContinuousCDF};
use std::collections::BTreeMap;

/// The leukocyte classes, in the order haematology reports them.
pub const LEUKOCYTES: [&str; 6] = [
    "neutrophil",
    "lymphocyte",
    "monocyte",
    "eosinophil",
    "basophil",
    "ig",
];

/// The class counted per 100 leukocytes, not among them.
pub const NUCLEATED_RED: &str = "erythroblast";

/// What a cell counts as while its colours are unlike those of the cells the model was
/// calibrated on (the colour gate flagged it) and no reviewer has classified it: its class is
/// not to be trusted, so it is not counted as that class.
pub const UNUSUAL_COLOUR: &str = "unusual colour";

/// The coverage of the intervals of [`Differential`].
pub const INTERVAL_LEVEL: f64 = 0.95;

/// How a counted label enters the differential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountRole {
    /// One of the [`LEUKOCYTES`]: in the percentages.
    Leukocyte,
    /// A nucleated red cell: reported per 100 leukocytes.
    NucleatedRed,
    /// Anything else (a platelet, a label a reviewer gave to a cell of no class): listed, not in
    /// the percentages.
    NotCounted,
}

/// The role of a class name or review label.
pub fn count_role(label: &str) -> CountRole {
    if LEUKOCYTES.contains(&label) {
        CountRole::Leukocyte
    } else if label == NUCLEATED_RED {
        CountRole::NucleatedRed
    } else {
        CountRole::NotCounted
    }
}

/// The exact (Clopper-Pearson) two-sided interval of a binomial proportion `k / n` at coverage
/// `level` (0 to 1): `(lower, upper)` as fractions, `None` when `n` is 0 or `k > n`.
pub fn exact_interval(k: usize, n: usize, level: f64) -> Option<(f64, f64)> {
    if n == 0 || k > n || !(0.0..1.0).contains(&level) {
        return None;
    }
    let tail = (1.0 - level) / 2.0;
    let quantile = |a: f64, b: f64, p: f64| Beta::new(a, b).ok().map(|d| d.inverse_cdf(p));
    let (k, n) = (k as f64, n as f64);
    let lower = if k == 0.0 {
        0.0
    } else {
        quantile(k, n - k + 1.0, tail)?
    };
    let upper = if k == n {
        1.0
    } else {
        quantile(k + 1.0, n - k, 1.0 - tail)?
    };
    Some((lower, upper))
}

/// One leukocyte class of a [`Differential`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassShare {
    /// Class name.
    pub class: String,
    /// Cells counted as it.
    pub count: usize,
    /// Its percentage of the leukocytes (0 when none were counted).
    pub percent: f64,
    /// The [`INTERVAL_LEVEL`] exact interval of that percentage, `[lower, upper]` in percent;
    /// `None` when no leukocyte was counted.
    pub interval: Option<[f64; 2]>,
}

impl ClassShare {
    /// The class's absolute count from the leukocyte count `wbc` (any unit, e.g. 10^9/L):
    /// `(count, [lower, upper])`, the interval that of the percentage (the leukocyte count's
    /// own imprecision not included); `None` when no leukocyte was counted.
    pub fn absolute(&self, wbc: f64) -> Option<(f64, [f64; 2])> {
        let [lo, hi] = self.interval?;
        Some((
            wbc * self.percent / 100.0,
            [wbc * lo / 100.0, wbc * hi / 100.0],
        ))
    }
}

/// A differential count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Differential {
    /// Leukocytes counted: the percentages' denominator.
    pub leukocytes: usize,
    /// Every leukocyte class, in [`LEUKOCYTES`] order, also those with no cell.
    pub classes: Vec<ClassShare>,
    /// Nucleated red cells counted.
    pub nucleated_red: usize,
    /// Nucleated red cells per 100 leukocytes; `None` when no leukocyte was counted.
    pub nucleated_red_per_100: Option<f64>,
    /// Counted labels in neither, by label (platelets, cells of no class).
    pub not_counted: BTreeMap<String, usize>,
}

impl Differential {
    /// The differential of counts by label (class or review label; a label may come more than
    /// once, its counts are added; counts of 0 are ignored).
    pub fn of_counts<'a>(counts: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
        let mut nucleated_red = 0;
        let mut not_counted = BTreeMap::new();
        for (label, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
            match count_role(label) {
                CountRole::Leukocyte => *by_class.entry(label).or_insert(0) += n,
                CountRole::NucleatedRed => nucleated_red += n,
                CountRole::NotCounted => *not_counted.entry(label.to_string()).or_insert(0) += n,
            }
        }
        let leukocytes: usize = by_class.values().sum();
        let classes = LEUKOCYTES
            .iter()
            .map(|class| {
                let count = by_class.get(class).copied().unwrap_or(0);
                ClassShare {
                    class: class.to_string(),
                    count,
                    percent: percent(count, leukocytes),
                    interval: exact_interval(count, leukocytes, INTERVAL_LEVEL)
                        .map(|(lo, hi)| [100.0 * lo, 100.0 * hi]),
                }
            })
            .collect();
        Self {
            leukocytes,
            classes,
            nucleated_red,
            nucleated_red_per_100: (leukocytes > 0).then(|| percent(nucleated_red, leukocytes)),
            not_counted,
        }
    }
}

fn percent(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * k as f64 / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::CLASSES;

    #[test]
    fn exact_intervals_match_the_binomial_tables() {
        // R: binom.test(5, 100)$conf.int = 0.01643188 0.11283491; binom.test(0, 100): 0 0.03621669;
        // binom.test(100, 100): 0.9637833 1; binom.test(1, 2): 0.01257912 0.98742088.
        let close = |(lo, hi): (f64, f64), want: (f64, f64)| {
            assert!(
                (lo - want.0).abs() < 1e-6 && (hi - want.1).abs() < 1e-6,
                "{lo} {hi} against {want:?}"
            )
        };
        for (k, n, want) in [
            (5, 100, (0.01643188, 0.11283491)),
            (0, 100, (0.0, 0.03621669)),
            (100, 100, (0.9637833, 1.0)),
            (1, 2, (0.01257912, 0.98742088)),
        ] {
            close(exact_interval(k, n, 0.95).expect("interval"), want);
        }
        assert_eq!(exact_interval(1, 0, 0.95), None);
        assert_eq!(exact_interval(3, 2, 0.95), None);
        assert_eq!(exact_interval(1, 2, 1.0), None);
    }

    #[test]
    fn intervals_narrow_as_more_cells_are_counted() {
        let width = |k, n| {
            let (lo, hi) = exact_interval(k, n, 0.95).expect("interval");
            hi - lo
        };
        assert!(width(10, 100) > width(20, 200));
        assert!(width(20, 200) > width(100, 1000));
    }

    #[test]
    fn every_model_class_has_its_role() {
        for class in CLASSES {
            let role = count_role(class);
            match class {
                "erythroblast" => assert_eq!(role, CountRole::NucleatedRed),
                "platelet" => assert_eq!(role, CountRole::NotCounted),
                _ => assert_eq!(role, CountRole::Leukocyte, "{class}"),
            }
        }
        assert_eq!(count_role("unclassifiable"), CountRole::NotCounted);
    }

    #[test]
    fn nucleated_red_cells_and_platelets_stay_out_of_the_percentages() {
        let d = Differential::of_counts([
            ("neutrophil", 60),
            ("lymphocyte", 30),
            ("monocyte", 10),
            ("erythroblast", 5),
            ("platelet", 2),
            ("unusual colour", 3),
            ("basophil", 0),
        ]);
        assert_eq!(d.leukocytes, 100);
        let order: Vec<&str> = d.classes.iter().map(|c| c.class.as_str()).collect();
        assert_eq!(order, LEUKOCYTES, "every leukocyte class, in report order");
        assert_eq!(d.classes[0].count, 60);
        assert!((d.classes[0].percent - 60.0).abs() < 1e-9);
        let total: f64 = d.classes.iter().map(|c| c.percent).sum();
        assert!(
            (total - 100.0).abs() < 1e-9,
            "percentages of leukocytes sum to 100"
        );
        let eos = &d.classes[3];
        assert_eq!((eos.count, eos.percent), (0, 0.0));
        let [lo, hi] = eos.interval.expect("interval");
        assert_eq!(lo, 0.0);
        assert!((hi - 3.621669).abs() < 1e-5, "0 of 100 can still be 3.6 %");
        assert_eq!(d.nucleated_red, 5);
        assert_eq!(d.nucleated_red_per_100, Some(5.0));
        let listed: Vec<(&str, usize)> = d
            .not_counted
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(listed, [("platelet", 2), ("unusual colour", 3)]);
    }

    #[test]
    fn absolute_counts_scale_the_percentages_and_their_intervals() {
        let d = Differential::of_counts([("neutrophil", 5), ("lymphocyte", 95)]);
        let (n, [lo, hi]) = d.classes[0].absolute(8.0).expect("counted");
        assert!((n - 0.4).abs() < 1e-12, "5 % of 8.0");
        assert!((lo - 8.0 * 0.01643188).abs() < 1e-6 && (hi - 8.0 * 0.11283491).abs() < 1e-6);
        let none = Differential::of_counts([("platelet", 3)]);
        assert_eq!(none.classes[0].absolute(8.0), None);
    }

    #[test]
    fn no_leukocyte_gives_no_percentages() {
        let d = Differential::of_counts([("platelet", 4), ("erythroblast", 1)]);
        assert_eq!(d.leukocytes, 0);
        assert!(d
            .classes
            .iter()
            .all(|c| c.percent == 0.0 && c.interval.is_none()));
        assert_eq!(d.nucleated_red_per_100, None);
        assert_eq!(d.nucleated_red, 1);
    }
}
