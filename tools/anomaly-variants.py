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
gain profile taken from each round alone and from the first 3, 6 and all rounds.
"""
import json
import sys

import numpy as np

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


def auroc(neg, pos):
    s = np.concatenate([neg, pos])
    ranks = s.argsort().argsort() + 1
    return (ranks[len(neg):].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def precision(X, shrink):
    C = np.atleast_2d(np.cov(X.T, bias=True))
    D = np.diag(np.diag(C))
    return np.linalg.inv((1 - shrink) * C + shrink * D)


def distance(X, m, P):
    d = X - m
    return np.sqrt(np.einsum("ij,jk,ik->i", d, P, d))


def score(Xtr, ytr, Xte, pte, shared, shrink):
    """Standardised Mahalanobis distance from the predicted class's Gaussian."""
    out = np.zeros(len(Xte))
    enough = {c: (ytr == c).sum() >= 2 * Xtr.shape[1] for c in classes}
    means = {c: Xtr[ytr == c].mean(0) if enough[c] else Xtr.mean(0) for c in classes}
    if shared:
        P_shared = precision(np.concatenate([Xtr[ytr == c] - means[c] for c in classes]), shrink)
    for c in classes:
        P = P_shared if shared else precision(Xtr[ytr == c] if enough[c] else Xtr, shrink)
        own = distance(Xtr[ytr == c] if enough[c] else Xtr, means[c], P)
        sel = pte == c
        out[sel] = (distance(Xte[sel], means[c], P) - own.mean()) / own.std()
    return out


def cross_fitted_auroc(X, OX, shared, shrink, folds=5):
    n = len(X)
    neg = np.zeros(n)
    for k in range(folds):
        held = np.arange(n) % folds == k
        fit = ~held & (pred == lab)
        neg[held] = score(X[fit], lab[fit], X[held], pred[held], shared, shrink)
    fit = pred == lab
    return auroc(neg, score(X[fit], lab[fit], OX, opred, shared, shrink))


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
