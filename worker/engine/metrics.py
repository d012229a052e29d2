"""Metrics on predicted probabilities of the positive class."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    return float(((np.asarray(probs) > threshold).astype(int) == np.asarray(labels)).mean())


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC, or None when the labels hold one class only and AUROC is undefined."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def binary_entropy(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def most_uncertain(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest-entropy predictions, most uncertain first (ties: lowest index)."""
    order = np.argsort(-binary_entropy(probs), kind="stable")
    return order[:k]
