"""How well the latent space separates known groups of sentences (the mixture component of a synthetic
corpus): the cross-validated accuracy of a k-nearest-neighbour classifier of the group from the
posterior means, and the silhouette score of the groups.

Both read the posterior means in the space the decoder reads, so a rescaling model (Scale-VAE) is
judged on the latents that shape its sentences.
"""

from __future__ import annotations

import math

import numpy as np

NEIGHBOURS = 15
FOLDS = 5


def component_clutter(mu: np.ndarray, labels: np.ndarray, seed: int = 0, neighbours: int = NEIGHBOURS,
                      folds: int = FOLDS) -> dict[str, float]:
    """``knn_accuracy``: mean accuracy of a ``neighbours``-NN classifier over ``folds`` stratified folds;
    ``silhouette``: the silhouette of the label groups (NaN where some dimension has no spread, e.g.
    a collapsed posterior whose means all coincide)."""
    from sklearn.metrics import silhouette_score

    mu, labels = np.asarray(mu, dtype=np.float64), np.asarray(labels)
    knn = knn_accuracy(mu, labels, seed, neighbours, folds)
    silhouette = silhouette_score(mu, labels) if mu.std(0).min() > 0 else math.nan
    return {"knn_accuracy": knn, "silhouette": float(silhouette), "knn_neighbours": neighbours,
            "knn_folds": folds}


def knn_accuracy(mu: np.ndarray, target: np.ndarray, seed: int = 0, neighbours: int = NEIGHBOURS,
                 folds: int = FOLDS, stratified: bool = True) -> float:
    """Mean accuracy of a ``neighbours``-NN classifier of ``target`` from ``mu`` over ``folds`` shuffled
    folds: stratified by the target, or plain (``stratified=False``) for targets with values too rare
    to stratify on (the words of a sentence)."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    split = (StratifiedKFold if stratified else KFold)(folds, shuffle=True, random_state=seed)
    mu = np.asarray(mu, dtype=np.float64)
    return float(cross_val_score(KNeighborsClassifier(neighbours), mu, np.asarray(target), cv=split).mean())
