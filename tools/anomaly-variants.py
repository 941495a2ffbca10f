#!/usr/bin/env python3
"""Offline comparison of anomaly-score variants on a leave-one-class-out run's cached val
evaluations (written by `cytolens calibrate --ood-limit N`). Not used by the product; it
approximates the classifier (the prediction is the class with the lowest mean scaled error over
all rounds), so its figures are close to, not equal to, what `calibrate` prints.

Usage: tools/anomaly-variants.py RUN [VAL_CELLS] [OOD_CELLS] [UNCOND_ROUNDS]   (needs numpy)
  tools/anomaly-variants.py runs/no-erythroblast-ft2 960 120
  tools/anomaly-variants.py runs/no-erythroblast-ft2 960 120 12
Prints, per feature set and covariance model, the 5-fold cross-fitted val AUROC of the left-out
class against the others, at shrinkage 0, 0.1 and 0.3. With a cache of more than 3 "no class"
rounds (`calibrate --uncond-rounds 12` writes one), it also prints the AUROC of the per-class
gain profile taken from each round alone and from the first 3, 6 and all rounds. Then two
other detectors: the k-nearest-neighbour distance on the shipped profile, and the Gaussian on
the full error profile (every class's mean error over all rounds: 8 times the rounds' cost).
"""
import json
import sys

import numpy as np

import anomaly_stats as stats

run = sys.argv[1]
n_val = sys.argv[2] if len(sys.argv) > 2 else "960"
n_ood = sys.argv[3] if len(sys.argv) > 3 else "120"
n_uncond = sys.argv[4] if len(sys.argv) > 4 else "3"


def load(path):
    evals = json.load(open(path))["evals"]
    # The left-out class has no errors: its rows are NaN.
    rounds = max(len(r) for r in evals[0]["raw"])
    raw = np.array([[r if len(r) == rounds else [np.nan] * rounds for r in e["raw"]] for e in evals])
    return raw, np.array([e["uncond"] for e in evals]), np.array([e["label"] for e in evals])


raw, un, lab = load(f"{run}/val-evals-{n_val}-u{n_uncond}.json")
oraw, oun, _ = load(f"{run}/val-ood-evals-{n_ood}-u{n_uncond}.json")
K, R = raw.shape[1], raw.shape[2]
classes = [c for c in range(K) if not np.isnan(raw[:, c, 0]).all()]
U = un.shape[1]
scale = np.array([raw[np.arange(len(lab)), lab, r].mean() for r in range(R)])


def features(raw, un):
    s, u = raw / scale, un / scale[:U]
    gains = np.log(s[:, classes, :U].sum(2) / u.sum(1, keepdims=True))
    level = np.log(u.mean(1))[:, None]
    pred = np.array(classes)[s[:, classes, :].mean(2).argmin(1)]
    late = np.log(s[np.arange(len(s)), pred, U:] / u.mean(1, keepdims=True))
    return dict(gains=gains, level=level, level_by_round=np.log(u), late=late), pred


f, pred = features(raw, un)
of, opred = features(oraw, oun)
print(f"{run}: proxy val accuracy {(pred == lab).mean():.3f}")


def cross_fitted_auroc(X, OX, shared, shrink):
    return stats.cross_fitted_auroc(X, lab, pred, OX, opred, classes, shared, shrink)


sets = {
    "profile (shipped)": ["gains", "level"],
    "gains only": ["gains"],
    "gains + level by round": ["gains", "level_by_round"],
    "profile + late rounds": ["gains", "level", "late"],
}
for name, keys in sets.items():
    X = np.hstack([f[k] for k in keys])
    OX = np.hstack([of[k] for k in keys])
    for shared in (False, True):
        figs = " ".join(f"{cross_fitted_auroc(X, OX, shared, sh):.3f}" for sh in (0.0, 0.1, 0.3))
        print(f"{name:24s} {'shared' if shared else 'per class':9s} {figs}")



def knn_score(Xtr, ytr, Xte, pte, k, per_class):
    """Mean distance to the k nearest fitted cells (of the predicted class, or of all), in
    standardised features."""
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-9
    A, B = (Xtr - mu) / sd, (Xte - mu) / sd
    out = np.zeros(len(B))
    for i, b in enumerate(B):
        pool = A[ytr == pte[i]] if per_class else A
        out[i] = np.sort(np.sqrt(((pool - b) ** 2).sum(1)))[:k].mean()
    return out


# Other detectors on the shipped profile: nearest neighbours instead of a Gaussian.
X = np.hstack([f["gains"], f["level"]])
OX = np.hstack([of["gains"], of["level"]])
for k in (5, 20):
    for per_class in (True, False):
        a = stats.cross_fitted_auroc_of(
            lambda *z: knn_score(*z, k, per_class), X, lab, pred, OX, opred
        )
        print(f"profile, {k}-NN distance ({'predicted class' if per_class else 'all classes'}) {a:.3f}")


def error_profile(raw, un):
    """log mean scaled error of every class over every round (a full evaluation: every class in
    every round, which the classifier's elimination does not pay for), and the log "no class"
    level."""
    s, u = raw / scale, un / scale[:U]
    return np.hstack([np.log(s[:, classes, :].mean(2)), np.log(u.mean(1))[:, None]])


X, OX = error_profile(raw, un), error_profile(oraw, oun)
figs = " ".join(f"{cross_fitted_auroc(X, OX, False, sh):.3f}" for sh in (0.0, 0.1, 0.3))
print(f"{'full error profile':24s} per class {figs}")

if U > 3:
    # Stratum of each round (0: lowest timesteps), from the error scale, which falls with t.
    stratum = np.argsort(np.argsort(-scale))

    def profile_of(raw, un, rounds):
        s, u = raw / scale, un / scale[:U]
        gains = np.log(s[:, classes][:, :, rounds].sum(2) / u[:, rounds].sum(1, keepdims=True))
        return np.hstack([gains, np.log(u[:, rounds].mean(1))[:, None]])

    def row(name, rounds):
        X, OX = profile_of(raw, un, rounds), profile_of(oraw, oun, rounds)
        figs = " ".join(f"{cross_fitted_auroc(X, OX, False, sh):.3f}" for sh in (0.0, 0.1, 0.3))
        print(f"{name:34s} {figs}")

    print("profile (per class) from the \"no class\" rounds:")
    for r in range(U):
        row(f"round {r} alone (stratum {stratum[r]})", [r])
    for n in (3, 6, U):
        row(f"rounds 0-{n - 1}", list(range(n)))
