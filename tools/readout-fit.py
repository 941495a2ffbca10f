#!/usr/bin/env python3
"""Offline test of richer read-outs of the denoising error (see
model-core/examples/readout_features.rs): how well does a score fitted on each set of error
summaries classify val cells, each fold classified under the weights fitted on the others?

The score of class c is -sum_{round, feature} W[round, feature] * x[c, round, feature] + b[c]
(the shipped classifier's form with one feature, the centre-weighted error), fitted by
multinomial logistic regression (Adam, full batch, 3,000 steps: 600 left the one-feature fit
short of its optimum, 0.885 against 0.898). Every class is evaluated in every round here (no
elimination), so the figures compare read-outs, not the shipped run.

Usage: tools/readout-fit.py FEATURES.json [folds, default 5]   (needs numpy)
"""
import json
import sys

import numpy as np

d = json.load(open(sys.argv[1]))
folds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
labels = np.array([c["label"] for c in d["cells"]])
X = np.array([c["feats"] for c in d["cells"]], dtype=np.float64)  # [cell, class, round, feat]
n, k, R, F = X.shape
print(f"{n} val cells, {k} classes, {R} rounds, {F} summaries; {folds}-fold cross-fitted")


def prepare(x, log):
    """Scale every (round, feature) by its mean over cells and classes, optionally take logs,
    and centre over the classes (the softmax ignores a shift shared by all classes)."""
    x = x / x.mean(axis=(0, 1), keepdims=True)
    if log:
        x = np.log(np.maximum(x, 1e-6))
    return x - x.mean(axis=1, keepdims=True)


def fit(x, y, steps=3000, lr=0.05):
    """Weights `[round, feature]` and class offsets `[class]` of the score, by maximum
    likelihood (Adam, full batch)."""
    n_, k_, r_, f_ = x.shape
    W = np.full((r_, f_), 1.0 / (r_ * f_))
    b = np.zeros(k_)
    m = [np.zeros_like(W), np.zeros_like(b)]
    v = [np.zeros_like(W), np.zeros_like(b)]
    onehot = np.eye(k_)[y]
    for step in range(1, steps + 1):
        logits = predict(x, W, b)
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n_  # d loss / d logits
        grads = (-np.einsum("nk,nkrf->rf", g, x), g.sum(0))
        for i, (param, grad) in enumerate(zip((W, b), grads)):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad * grad
            param -= lr * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step)) + 1e-8)
    return W, b


def predict(x, W, b):
    return -np.einsum("nkrf,rf->nk", x, W) + b


def cross_fit(x):
    """Accuracy and balanced accuracy of every cell classified under the fit on the other folds."""
    fold = np.random.default_rng(0).permutation(n) % folds
    logits = np.zeros((n, k))
    for f in range(folds):
        tr, te = fold != f, fold == f
        W, b = fit(x[tr], labels[tr])
        logits[te] = predict(x[te], W, b)
    pred = logits.argmax(1)
    balanced = np.mean([(pred[labels == c] == c).mean() for c in range(k)])
    return (pred == labels).mean(), balanced


SETS = {
    "weighted (shipped read-out)": [0],
    "rings": [1, 2, 3, 4],
    "weighted + low-pass": [0, 5, 6, 7],
    "rings + low-pass": [1, 2, 3, 4, 5, 6, 7],
    "all eight": list(range(F)),
}
for name, cols in SETS.items():
    for log in (False, True):
        acc, bal = cross_fit(prepare(X[..., cols], log))
        print(f"{'log ' if log else ''}{name:32s}: accuracy {acc:.3f}, balanced {bal:.3f}", flush=True)
