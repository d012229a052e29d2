"""Metrics on predicted probabilities of the positive class, and the per-example record of a test."""

from __future__ import annotations

import base64

import numpy as np
from sklearn.metrics import roc_auc_score


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    return float(correct(labels, probs, threshold).mean())


def correct(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Which examples the prediction got right (bool per example)."""
    return (np.asarray(scores) > threshold).astype(int) == np.asarray(labels)


def pack_correct(hits: np.ndarray) -> str:
    """Per-example correctness as base64 bits (125 bytes per 1,000 examples).

    Stored with each result so that two trials on the same test set can be compared example by
    example (paired) and an accuracy's test-set sampling error can be bootstrapped.
    """
    return base64.b64encode(np.packbits(np.asarray(hits, dtype=bool)).tobytes()).decode("ascii")


def unpack_correct(packed: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))
    if len(bits) < n or bits[n:].any():
        raise ValueError(f"packed correctness does not hold {n} examples")
    return bits[:n].astype(bool)


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


def auroc_interval(value: float, n_pos: int, n_neg: int, z: float = 1.96) -> tuple[float, float]:
    """A normal interval for an AUROC measured on n_pos positives and n_neg negatives (Hanley &
    McNeil 1982's standard error; z=1.96: 95%), clipped to [0, 1]."""
    if n_pos < 1 or n_neg < 1:
        return 0.0, 1.0
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    variance = (value * (1 - value) + (n_pos - 1) * (q1 - value**2) + (n_neg - 1) * (q2 - value**2)) / (n_pos * n_neg)
    # At 0.5 exactly the formula's variance is that of a chance ranker; never let it vanish at the edges.
    se = max(variance, 1.0 / (12 * n_pos * n_neg)) ** 0.5
    return max(0.0, value - z * se), min(1.0, value + z * se)


def above_chance(value: float | None, labels: np.ndarray, z: float = 1.96) -> bool:
    """Whether an AUROC on these labels is clearly above 0.5 (its interval's lower end is above it)."""
    if value is None or np.isnan(value):
        return False
    labels = np.asarray(labels)
    n_pos = int(labels.sum())
    return auroc_interval(value, n_pos, len(labels) - n_pos, z)[0] > 0.5
