//! Classification, calibration and selective-prediction metrics.

use serde::Serialize;

/// Confusion matrix `[truth][predicted]`.
pub fn confusion(truth: &[usize], pred: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&t, &p) in truth.iter().zip(pred) {
        m[t][p] += 1;
    }
    m
}

/// Recall of each class of the confusion matrix `m` (`[classes]`; `None` for a class absent
/// from `truth`).
pub fn recalls(m: &[Vec<usize>]) -> Vec<Option<f64>> {
    m.iter()
        .enumerate()
        .map(|(i, row)| {
            let n = row.iter().sum::<usize>();
            (n > 0).then(|| row[i] as f64 / n as f64)
        })
        .collect()
}

/// Mean recall over the classes present in `truth`.
pub fn balanced_accuracy(m: &[Vec<usize>]) -> f64 {
    let present: Vec<f64> = recalls(m).into_iter().flatten().collect();
    present.iter().sum::<f64>() / present.len().max(1) as f64
}

/// Macro-averaged F1 over the classes present in `truth`.
pub fn macro_f1(m: &[Vec<usize>]) -> f64 {
    let k = m.len();
    let mut f1s = Vec::new();
    for (i, row) in m.iter().enumerate() {
        let support: usize = row.iter().sum();
        if support == 0 {
            continue;
        }
        let tp = row[i] as f64;
        let predicted: usize = (0..k).map(|r| m[r][i]).sum();
        let p = if predicted > 0 {
            tp / predicted as f64
        } else {
            0.0
        };
        let r = tp / support as f64;
        f1s.push(if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        });
    }
    f1s.iter().sum::<f64>() / f1s.len().max(1) as f64
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Serialize)]
pub struct ReliabilityBin {
    /// Lower edge of the confidence bin.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Cells in the bin.
    pub count: usize,
    /// Mean confidence in the bin.
    pub confidence: f64,
    /// Accuracy in the bin.
    pub accuracy: f64,
}

/// Reliability diagram of the top-class confidence with `bins` equal-width bins.
pub fn reliability(confidence: &[f64], correct: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let mut out: Vec<ReliabilityBin> = (0..bins)
        .map(|b| ReliabilityBin {
            lo: b as f64 / bins as f64,
            hi: (b + 1) as f64 / bins as f64,
            count: 0,
            confidence: 0.0,
            accuracy: 0.0,
        })
        .collect();
    for (&c, &ok) in confidence.iter().zip(correct) {
        let b = ((c * bins as f64) as usize).min(bins - 1);
        out[b].count += 1;
        out[b].confidence += c;
        out[b].accuracy += ok as u8 as f64;
    }
    for b in &mut out {
        if b.count > 0 {
            b.confidence /= b.count as f64;
            b.accuracy /= b.count as f64;
        }
    }
    out
}

/// Expected calibration error: count-weighted mean |accuracy - confidence| over the bins.
pub fn expected_calibration_error(confidence: &[f64], correct: &[bool], bins: usize) -> f64 {
    let n = confidence.len().max(1) as f64;
    reliability(confidence, correct, bins)
        .iter()
        .map(|b| b.count as f64 / n * (b.accuracy - b.confidence).abs())
        .sum()
}

/// Risk-coverage curve: cells sorted by decreasing confidence; point `i` is
/// `(coverage (i+1)/n, error rate among the i+1 most confident)`.
pub fn risk_coverage(confidence: &[f64], correct: &[bool]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..confidence.len()).collect();
    idx.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    let mut errors = 0usize;
    idx.iter()
        .enumerate()
        .map(|(i, &j)| {
            errors += (!correct[j]) as usize;
            (
                (i + 1) as f64 / idx.len() as f64,
                errors as f64 / (i + 1) as f64,
            )
        })
        .collect()
}

/// Area under the risk-coverage curve (mean risk over coverages).
pub fn aurc(curve: &[(f64, f64)]) -> f64 {
    curve.iter().map(|p| p.1).sum::<f64>() / curve.len().max(1) as f64
}

/// Accuracy of the `fraction` most confident cells.
pub fn accuracy_at_coverage(confidence: &[f64], correct: &[bool], fraction: f64) -> f64 {
    let curve = risk_coverage(confidence, correct);
    if curve.is_empty() {
        return 0.0;
    }
    let k = ((fraction * curve.len() as f64).ceil() as usize).clamp(1, curve.len());
    1.0 - curve[k - 1].1
}

/// Area under the ROC curve of `score` separating `positive` from the rest (ties count half).
pub fn auroc(score: &[f64], positive: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    // Mann-Whitney U with average ranks for ties.
    let mut ranks = vec![0f64; score.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = avg;
        }
        i = j + 1;
    }
    let npos = positive.iter().filter(|p| **p).count() as f64;
    let nneg = positive.len() as f64 - npos;
    if npos == 0.0 || nneg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    (rank_sum - npos * (npos + 1.0) / 2.0) / (npos * nneg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_of_a_known_case() {
        // 10 cells at confidence 0.9 of which 6 are right: ECE = |0.6 - 0.9| = 0.3.
        let conf = vec![0.9; 10];
        let correct: Vec<bool> = (0..10).map(|i| i < 6).collect();
        assert!((expected_calibration_error(&conf, &correct, 15) - 0.3).abs() < 1e-12);
        // Perfectly calibrated: half at 0.5 (half right), half at 1.0 (all right).
        let conf = vec![0.5, 0.5, 1.0, 1.0];
        let correct = vec![true, false, true, true];
        assert!(expected_calibration_error(&conf, &correct, 15) < 1e-12);
    }

    #[test]
    fn balanced_accuracy_and_f1() {
        let m = confusion(&[0, 0, 0, 1], &[0, 0, 1, 1], 2);
        assert_eq!(m, vec![vec![2, 1], vec![0, 1]]);
        assert!((balanced_accuracy(&m) - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        // class 0: p=1, r=2/3, f1=0.8; class 1: p=0.5, r=1, f1=2/3.
        assert!((macro_f1(&m) - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn selective_accuracy_and_auroc() {
        let conf = vec![0.9, 0.8, 0.7, 0.6];
        let correct = vec![true, true, false, true];
        assert_eq!(accuracy_at_coverage(&conf, &correct, 0.5), 1.0);
        assert!((accuracy_at_coverage(&conf, &correct, 1.0) - 0.75).abs() < 1e-12);
        let curve = risk_coverage(&conf, &correct);
        assert!((aurc(&curve) - (0.0 + 0.0 + 1.0 / 3.0 + 0.25) / 4.0).abs() < 1e-12);
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            1.0
        );
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), 0.5);
    }
}
