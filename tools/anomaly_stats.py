"""Shared pieces of the offline anomaly-score analyses (tools/anomaly-variants.py,
tools/spatial-anomaly.py): AUROC, shrunk Gaussians per predicted class, and the cross-fitted
val AUROC of a left-out class."""
import numpy as np


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


def score(Xtr, ytr, Xte, pte, classes, shared, shrink):
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


def cross_fitted_auroc(X, lab, pred, OX, opred, classes, shared, shrink, folds=5):
    """AUROC of the left-out class's cells (`OX`, predicted `opred`) against the fitted
    classes' cells (`X`, labels `lab`, predicted `pred`): each fold of `X` is scored under
    Gaussians fitted on the other folds' correctly classified cells, `OX` under all of them."""
    return cross_fitted_auroc_of(
        lambda *z: score(*z, classes, shared, shrink), X, lab, pred, OX, opred, folds
    )


def cross_fitted_auroc_of(scorer, X, lab, pred, OX, opred, folds=5):
    """As `cross_fitted_auroc`, for any `scorer(Xfit, labels, Xscored, predicted)`."""
    n = len(X)
    neg = np.zeros(n)
    for k in range(folds):
        held = np.arange(n) % folds == k
        fit = ~held & (pred == lab)
        neg[held] = scorer(X[fit], lab[fit], X[held], pred[held])
    fit = pred == lab
    return auroc(neg, scorer(X[fit], lab[fit], OX, opred))
