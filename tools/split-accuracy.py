#!/usr/bin/env python3
"""Accuracy of a model through `cytolens classify` on a class-balanced sample of one split.

A diagnostic of fit: the same number of cells per class drawn (seeded) from `train` and from
`val` shows how far the model is from fitting its own training cells, and how far from
generalising. It reports nothing on test.

    tools/split-accuracy.py --split train --per-class 60 [--model static/model] [--seed 7]

Prints the balanced accuracy, accuracy, accuracy of the 80 % most confident cells and the
recall per class; `--jsonl F` keeps classify's output lines.
"""
import argparse
import collections
import csv
import json
import random
import subprocess
import sys
from pathlib import Path

from classification_stats import acc_at80, balanced, recall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", required=True, choices=["train", "val"])
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", default="static/model")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--bin", default="target/release/cytolens")
    ap.add_argument("--jsonl", help="keep classify's JSON lines here")
    a = ap.parse_args()

    by_class = collections.defaultdict(list)
    with open(Path(a.data) / "pbc" / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] == a.split:
                by_class[row["label"]].append(row["path"])
    rng = random.Random(a.seed)
    files, truth = [], {}
    for label in sorted(by_class):
        paths = by_class[label]
        if len(paths) < a.per_class:
            sys.exit(f"{a.split} has only {len(paths)} {label} cells, fewer than --per-class")
        for p in rng.sample(paths, a.per_class):
            full = str(Path(a.data) / p)
            files.append(full)
            truth[full] = label

    out = subprocess.run(
        [a.bin, "classify", "--json", "--model", a.model, *files],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"classify failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
    if a.jsonl:
        Path(a.jsonl).write_text(out.stdout)

    rows = []
    for line in out.stdout.splitlines():
        d = json.loads(line)
        if "error" in d:
            sys.exit(f"{d['file']}: {d['error']}")
        rows.append({"label": truth[d["file"]], "predicted": d["class"],
                     "confidence": d["confidence"]})
    if len(rows) != len(files):
        sys.exit(f"classify returned {len(rows)} lines for {len(files)} files")
    everyone = range(len(rows))
    per_class = recall(rows, everyone)
    accuracy = sum(r["label"] == r["predicted"] for r in rows) / len(rows)
    print(
        f"{a.split}: {len(files)} cells ({a.per_class} per class, seed {a.seed}), model {a.model}\n"
        f"  balanced accuracy {balanced(rows, everyone):.3f}, accuracy {accuracy:.3f}, "
        f"acc@80 {acc_at80(rows, everyone):.3f}\n"
        "  recall: " + ", ".join(f"{c} {per_class[c]:.2f}" for c in sorted(per_class))
    )


if __name__ == "__main__":
    main()
