#!/usr/bin/env python3
"""Where do the diffusion classifier and the baseline CNN err, and would pooling them help?

Reads the per-cell files of `cytolens eval --cells` on val and on test (each row: the label,
every class's diffusion probability `p_<class>` and the baseline's `baseline_p_<class>`).
Prints, for test:
- the cells each model gets right and the other wrong (McNemar's exact test);
- a log-linear pool, p ∝ p_diffusion^a * p_baseline^b (a and b also act as temperatures),
  with a and b fitted on val alone by log-likelihood on a grid (0 to 2, step 0.05), then
  applied once to test: accuracy, balanced accuracy, macro F1, ECE (15 bins), acc@80, AURC,
  per-class recall, against each model alone; and a paired bootstrap (2,000 draws, fixed
  seed) of the pool's balanced-accuracy gain over each model alone.
Standard library only.

  tools/pool-with-baseline.py runs/ens/val-cells.csv runs/ens/test-cells.csv
"""
import csv
import math
import random
import sys

from classification_stats import acc_at80, aurc, balanced, recall

EPS = 1e-12


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    classes = [k[2:] for k in rows[0] if k.startswith("p_")]
    if not all(f"baseline_p_{c}" in rows[0] for c in classes):
        sys.exit(f"{path}: no baseline probabilities (eval found no baseline?)")
    cells = [
        (
            r["label"],
            [math.log(max(float(r[f"p_{c}"]), EPS)) for c in classes],
            [math.log(max(float(r[f"baseline_p_{c}"]), EPS)) for c in classes],
        )
        for r in rows
    ]
    return classes, cells


def pooled(cell, a, b):
    """The pool's probabilities of one cell."""
    z = [a * d + b * s for d, s in zip(cell[1], cell[2])]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    t = sum(e)
    return [v / t for v in e]


def nll(cells, classes, a, b):
    total = 0.0
    for cell in cells:
        p = pooled(cell, a, b)
        total -= math.log(max(p[classes.index(cell[0])], EPS))
    return total / len(cells)


def as_rows(cells, classes, a, b):
    rows = []
    for cell in cells:
        p = pooled(cell, a, b)
        k = max(range(len(p)), key=p.__getitem__)
        rows.append({"label": cell[0], "predicted": classes[k], "confidence": p[k]})
    return rows


def macro_f1(rows, classes):
    f1 = []
    for c in classes:
        tp = sum(r["label"] == c and r["predicted"] == c for r in rows)
        fp = sum(r["label"] != c and r["predicted"] == c for r in rows)
        fn = sum(r["label"] == c and r["predicted"] != c for r in rows)
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1) / len(f1)


def ece(rows, bins=15):
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = [r for r in rows if lo < r["confidence"] <= hi or (b == 0 and r["confidence"] == 0)]
        if sel:
            conf = sum(r["confidence"] for r in sel) / len(sel)
            acc = sum(r["label"] == r["predicted"] for r in sel) / len(sel)
            total += len(sel) / len(rows) * abs(conf - acc)
    return total


def mcnemar_p(b, c):
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    classes, val = load(sys.argv[1])
    test_classes, test = load(sys.argv[2])
    if test_classes != classes:
        sys.exit("the two files have other classes")
    grid = [i * 0.05 for i in range(41)]
    fit = min(((nll(val, classes, a, b), a, b) for a in grid for b in grid))
    _, a, b = fit
    print(f"pool fitted on {len(val)} val cells: p ∝ p_diffusion^{a:.2f} * p_baseline^{b:.2f}"
          f" (val log-likelihood {-fit[0]:.4f}; diffusion alone {-nll(val, classes, 1, 0):.4f},"
          f" baseline alone {-nll(val, classes, 0, 1):.4f})")
    models = {
        "diffusion": as_rows(test, classes, 1, 0),
        "baseline": as_rows(test, classes, 0, 1),
        "pool": as_rows(test, classes, a, b),
    }
    idx = list(range(len(test)))
    d, s = models["diffusion"], models["baseline"]
    only_d = sum(d[i]["predicted"] == d[i]["label"] != s[i]["predicted"] for i in idx)
    only_s = sum(s[i]["predicted"] == s[i]["label"] != d[i]["predicted"] for i in idx)
    both_wrong = sum(d[i]["predicted"] != d[i]["label"] and s[i]["predicted"] != s[i]["label"] for i in idx)
    print(f"test, {len(test)} cells: right only under diffusion {only_d}, only under the baseline"
          f" {only_s} (McNemar p = {mcnemar_p(only_d, only_s):.2g}), wrong under both {both_wrong}")
    print("  by true class (right only under diffusion / only under the baseline): " + ", ".join(
        f"{c} {sum(d[i]['label'] == c and d[i]['predicted'] == c != s[i]['predicted'] for i in idx)}"
        f"/{sum(s[i]['label'] == c and s[i]['predicted'] == c != d[i]['predicted'] for i in idx)}"
        for c in classes))
    print(f"{'model (test)':<12} {'accuracy':>9} {'balanced':>9} {'macro F1':>9} {'ECE':>7} {'acc@80':>7} {'AURC':>7}")
    for name, rows in models.items():
        acc = sum(r["label"] == r["predicted"] for r in rows) / len(rows)
        print(f"{name:<12} {acc:>9.4f} {balanced(rows, idx):>9.4f} {macro_f1(rows, classes):>9.4f}"
              f" {ece(rows):>7.4f} {acc_at80(rows, idx):>7.4f} {aurc(rows, idx):>7.4f}")
    print("recall per class (test):")
    rec = {name: recall(rows, idx) for name, rows in models.items()}
    for c in classes:
        print(f"  {c:<13}" + "".join(f" {name} {rec[name][c]:.3f}" for name in models))
    rng = random.Random(7)
    gains = {"diffusion": [], "baseline": []}
    for _ in range(2000):
        draw = [rng.randrange(len(idx)) for _ in idx]
        pool = balanced(models["pool"], draw)
        for name, g in gains.items():
            g.append(pool - balanced(models[name], draw))
    for name, g in gains.items():
        g.sort()
        print(f"pool - {name}, balanced accuracy: mean {sum(g) / len(g):+.4f},"
              f" 95 % interval {g[50]:+.4f} to {g[1949]:+.4f}")


if __name__ == "__main__":
    main()
