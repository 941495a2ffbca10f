#!/usr/bin/env python3
"""Offline test of spatial anomaly scores: the gain profile taken per ring around the crop
centre instead of over the whole crop. Reads what `cargo run --release --example
spatial_features` writes; not used by the product.

Usage: tools/spatial-anomaly.py FEATURES.json   (needs numpy)
Prints the 5-fold cross-fitted val AUROC of the left-out class against the fitted classes'
cells, per feature set, at shrinkage 0.1, 0.3 and 0.6 (per-class and shared covariance).
"""
import json
import sys

import numpy as np

import anomaly_stats as stats

d = json.load(open(sys.argv[1]))
ex = d["left_out"]
cells = d["cells"]
lab = np.array([c["label"] for c in cells])
pred = np.array([c["pred"] for c in cells])
rings = np.array([c["rings"] for c in cells])  # [cell][class][ring]
un = np.array([c["uncond_rings"] for c in cells])  # [cell][ring]
classes = [c for c in range(rings.shape[1]) if c != ex]
ood = lab == ex
ind = ~ood
print(f"{sys.argv[1]}: {ind.sum()} cells of the fitted classes, {ood.sum()} of the left-out one; "
      f"accuracy {(pred[ind] == lab[ind]).mean():.3f}")

R = rings[:, classes, :]
whole_gain = np.log(R.sum(2) / un.sum(1, keepdims=True))
whole_level = np.log(un.sum(1, keepdims=True))
ring_gain = np.log(R / un[:, None, :]).reshape(len(cells), -1)
ring_level = np.log(un)
pred_idx = np.array([classes.index(p) if p in classes else 0 for p in pred])
pred_ring_gain = np.log(R[np.arange(len(cells)), pred_idx] / un)
shape = np.log(un / un.sum(1, keepdims=True))[:, :-1]

sets = {
    "whole-crop profile (as shipped)": [whole_gain, whole_level],
    "ring gains + ring levels": [ring_gain, ring_level],
    "whole profile + predicted class's ring gains": [whole_gain, whole_level, pred_ring_gain],
    "whole profile + ring levels": [whole_gain, ring_level],
    "whole profile + error shape": [whole_gain, whole_level, shape],
    "ring gains only": [ring_gain],
}


def cross_fitted(X, shared, shrink):
    return stats.cross_fitted_auroc(
        X[ind], lab[ind], pred[ind], X[ood], pred[ood], classes, shared, shrink
    )


for name, parts in sets.items():
    X = np.hstack(parts)
    for shared in (False, True):
        figs = " ".join(f"{cross_fitted(X, shared, sh):.3f}" for sh in (0.1, 0.3, 0.6))
        print(f"{name:46s} {X.shape[1]:2d}d {'shared' if shared else 'per class':9s} {figs}")
