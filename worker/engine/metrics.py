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
