"""Shared figures of a set of classified cells (tools/compare-held-out.py,
tools/split-accuracy.py): per-class recall, balanced accuracy, the auto-accepted share, the
accuracy of the 80 % most confident cells (acc@80) and the area under the risk-coverage curve.

Each row is a dict with `label` and `predicted` (class names), `confidence` (a number or its
text) and, for `auto_share`, `triage`; `idx` picks the rows (repeats allowed, for a bootstrap).
Standard library only."""


def recall(rows, idx):
    """Recall of each true class among the rows of idx, by class name."""
    right, total = {}, {}
    for i in idx:
        r = rows[i]
        total[r["label"]] = total.get(r["label"], 0) + 1
        right[r["label"]] = right.get(r["label"], 0) + (r["label"] == r["predicted"])
    return {c: right[c] / total[c] for c in total}


def balanced(rows, idx):
    per_class = recall(rows, idx)
    return sum(per_class.values()) / len(per_class)


def auto_share(rows, idx):
    return sum(rows[i]["triage"] == "auto" for i in idx) / len(idx)


def by_confidence(rows, idx):
    """Whether each cell of idx is right, most confident first."""
    order = sorted(idx, key=lambda i: -float(rows[i]["confidence"]))
    return [rows[i]["label"] == rows[i]["predicted"] for i in order]


def acc_at80(rows, idx):
    right = by_confidence(rows, idx)
    kept = max(1, int(0.8 * len(right)))
    return sum(right[:kept]) / kept


def aurc(rows, idx):
    """Mean over coverages k/n of the error rate of the k most confident cells."""
    wrong, total = 0, 0.0
    for k, ok in enumerate(by_confidence(rows, idx), start=1):
        wrong += not ok
        total += wrong / k
    return total / len(idx)
