#!/usr/bin/env python3
"""Compare two models cell by cell on the same held-out val cells (a paired test).

`cytolens calibrate` writes RUN/val-held-out-N-uK.csv: each val cell classified under the
settings fitted on the other half of val. Given two such files (same cells), this prints
accuracy, balanced accuracy, the auto-accepted share, the accuracy of the 80 % most confident
cells (acc@80) and the area under the risk-coverage curve (AURC) of each, with
- McNemar's exact test on the cells one model gets right and the other wrong;
- a paired bootstrap (cells resampled together, 2,000 draws, fixed seed) of the differences
  in balanced accuracy, in the auto-accepted share and in acc@80: the mean and a 95 % interval.
Standard library only.

  tools/compare-held-out.py runs/diffusion-bal/val-held-out-960-u3.csv \\
      runs/diffusion-gpu6/val-held-out-960-u3.csv
"""
import csv
import math
import random
import sys

from classification_stats import acc_at80, auto_share, aurc, balanced


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def mcnemar_p(b, c):
    """Two-sided exact McNemar p-value for b and c discordant cells."""
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = load(sys.argv[1]), load(sys.argv[2])
    if [r["path"] for r in a] != [r["path"] for r in b]:
        sys.exit("the two files do not hold the same cells in the same order")
    n = len(a)
    everyone = range(n)
    for name, rows in (("A", a), ("B", b)):
        acc = sum(r["label"] == r["predicted"] for r in rows) / n
        print(f"{name}: accuracy {acc:.3f}, balanced {balanced(rows, everyone):.3f}, "
              f"auto {auto_share(rows, everyone):.3f}, acc@80 {acc_at80(rows, everyone):.4f}, "
              f"AURC {aurc(rows, everyone):.4f}  ({sys.argv[1 if name == 'A' else 2]})")
    only_a = sum(x["label"] == x["predicted"] and y["label"] != y["predicted"] for x, y in zip(a, b))
    only_b = sum(y["label"] == y["predicted"] and x["label"] != x["predicted"] for x, y in zip(a, b))
    print(f"cells right under A only: {only_a}, under B only: {only_b}; "
          f"McNemar exact p = {mcnemar_p(only_a, only_b):.3f}")
    rng = random.Random(7)
    d_bal, d_auto, d_80 = [], [], []
    for _ in range(2000):
        idx = [rng.randrange(n) for _ in range(n)]
        d_bal.append(balanced(b, idx) - balanced(a, idx))
        d_auto.append(auto_share(b, idx) - auto_share(a, idx))
        d_80.append(acc_at80(b, idx) - acc_at80(a, idx))
    for what, d in (("balanced accuracy", d_bal), ("auto-accepted share", d_auto),
                    ("acc@80", d_80)):
        d.sort()
        print(f"B - A, {what}: {sum(d) / len(d):+.4f} "
              f"(95 % interval {d[int(0.025 * len(d))]:+.4f} to {d[int(0.975 * len(d))]:+.4f})")


if __name__ == "__main__":
    main()
