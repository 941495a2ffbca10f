#!/usr/bin/env python3
"""Anomaly scores from the denoiser's features (see model-core/examples/feature_anomaly.rs).

Fits on the train cells only and prints the val AUROC of the left-out class's cells against the
fitted classes' val cells, for each timestep, feature block and score:
  maha-shared  min over classes of the Mahalanobis distance, one shrunk covariance (Lee et al. 2018)
  maha-class   the same with a shrunk covariance per class
  knn-k        distance to the k-th nearest train cell, features L2-normalised (Sun et al. 2022)
Usage: tools/feature-anomaly.py FEATURES.json [channels, default 16,32,64,128]
Needs numpy.
"""
import json
import sys

import numpy as np

from anomaly_stats import auroc, distance, precision


def blocks(channels):
    """Column ranges of each encoder level and of the middle block in a feature vector."""
    edges = np.cumsum([0] + channels + [channels[-1]])
    names = [f"level{i}" for i in range(len(channels))] + ["mid"]
    return {n: (a, b) for n, a, b in zip(names, edges[:-1], edges[1:])}


def maha(Xtr, ytr, Xte, shared, shrink):
    classes = np.unique(ytr)
    means = {c: Xtr[ytr == c].mean(0) for c in classes}
    if shared:
        P = precision(np.concatenate([Xtr[ytr == c] - means[c] for c in classes]), shrink)
    d = [distance(Xte, means[c], P if shared else precision(Xtr[ytr == c], shrink)) for c in classes]
    return np.min(d, axis=0)


def knn(Xtr, Xte, k):
    a = Xtr / np.linalg.norm(Xtr, axis=1, keepdims=True)
    b = Xte / np.linalg.norm(Xte, axis=1, keepdims=True)
    dist = 2 - 2 * b @ a.T
    return np.sort(dist, axis=1)[:, k - 1]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    doc = json.load(open(sys.argv[1]))
    channels = [int(c) for c in (sys.argv[2] if len(sys.argv) == 3 else "16,32,64,128").split(",")]
    cells = doc["cells"]
    sets = np.array([c["set"] for c in cells])
    labels = np.array([c["label"] for c in cells])
    F = np.array([c["features"] for c in cells])  # [cells, timesteps, dim]
    tr, va, ood = sets == "train", sets == "val", sets == "ood"
    print(f"{tr.sum()} train, {va.sum()} val, {ood.sum()} val cells of class {doc['left_out']}")
    views = {f"t={t}": F[:, i] for i, t in enumerate(doc["timesteps"])}
    views["all t"] = F.reshape(len(F), -1)
    for tname, X in views.items():
        for bname, (a, b) in list(blocks(channels).items()) + [("all", (0, F.shape[2]))]:
            if tname == "all t" and bname != "all":
                continue
            Xb = X[:, a:b] if tname != "all t" else X
            mu, sd = Xb[tr].mean(0), Xb[tr].std(0) + 1e-6
            Z = (Xb - mu) / sd
            row = []
            for name, f in [
                ("maha-shared .1", lambda: maha(Z[tr], labels[tr], Z, True, 0.1)),
                ("maha-shared .5", lambda: maha(Z[tr], labels[tr], Z, True, 0.5)),
                ("maha-class .5", lambda: maha(Z[tr], labels[tr], Z, False, 0.5)),
                ("knn-1", lambda: knn(Z[tr], Z[va | ood], 1)),
                ("knn-10", lambda: knn(Z[tr], Z[va | ood], 10)),
            ]:
                s = f()
                if len(s) == len(Z):
                    s = s[va | ood]
                is_ood = ood[va | ood]
                row.append(f"{name} {auroc(s[~is_ood], s[is_ood]):.3f}")
            print(f"{tname:7} {bname:7} dim {Xb.shape[1]:4}: " + "  ".join(row))


if __name__ == "__main__":
    main()
