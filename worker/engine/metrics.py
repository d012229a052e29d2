"""Metrics on predictions, and the per-example record of a test.

A binary task's scores are one number an example (the positive class's probability or log-odds) cut
at a threshold; a task of K > 2 classes scores a row of K (probabilities or log-probabilities) and
predicts the class whose score plus that class's bias is highest.
"""

from __future__ import annotations

import base64

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score


def predicted_classes(scores: np.ndarray, cut: float | np.ndarray = 0.5) -> np.ndarray:
    """Class indices: a binary score above `cut`, or the highest of each row plus the biases `cut`."""
    scores = np.asarray(scores)
    if scores.ndim == 1:
        return (scores > cut).astype(np.int64)
    return np.argmax(scores + np.asarray(cut, dtype=np.float64), axis=1)


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float | np.ndarray = 0.5) -> float:
    return float(correct(labels, probs, threshold).mean())


def correct(labels: np.ndarray, scores: np.ndarray, threshold: float | np.ndarray = 0.5) -> np.ndarray:
    """Which examples the prediction got right (bool per example)."""
    return predicted_classes(scores, threshold) == np.asarray(labels)


def macro_f1(labels: np.ndarray, scores: np.ndarray, cut: float | np.ndarray, n_classes: int) -> float:
    """F1 averaged over the classes, each weighing the same however rare (a class never predicted: 0)."""
    return float(f1_score(labels, predicted_classes(scores, cut), labels=list(range(n_classes)), average="macro",
                          zero_division=0.0))


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
    """AUROC (one-vs-rest, macro-averaged over the classes present, for rows of K scores), or None
    when the labels hold one class only and AUROC is undefined."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    present = np.unique(labels)
    if len(present) < 2:
        return None
    if scores.ndim == 1:
        return float(roc_auc_score(labels, scores))
    return float(np.mean([roc_auc_score(labels == c, scores[:, c]) for c in present]))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy: of the positive class's probability, or of each row of class probabilities."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    if p.ndim == 2:
        return -(p * np.log(p)).sum(axis=1)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def most_uncertain(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest-entropy predictions, most uncertain first (ties: lowest index)."""
    order = np.argsort(-entropy(probs), kind="stable")
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


def above_chance(value: float | None, labels: np.ndarray, z: float = 1.96, n_classes: int = 2) -> bool:
    """Whether an AUROC on these labels is clearly above 0.5 (its interval's lower end is above it).

    For K > 2 classes the macro AUROC's half-width is the root mean square of the classes' own (no
    narrower than if their one-vs-rest AUROCs moved together, the widest their average's can be):
    a seed is said to have learned only when even that interval stays above 0.5."""
    if value is None or np.isnan(value):
        return False
    labels = np.asarray(labels)
    if n_classes == 2:
        n_pos = int(labels.sum())
        return auroc_interval(value, n_pos, len(labels) - n_pos, z)[0] > 0.5
    widths = [value - auroc_interval(value, int((labels == c).sum()), int((labels != c).sum()), z)[0]
              for c in np.unique(labels)]
    return value - float(np.sqrt(np.mean(np.square(widths)))) > 0.5
