"""The shape every task takes: a labeled pool to buy labels from, and a held-out test set."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


BINARY_CLASSES = ("0", "1")


def stable_id(text: str) -> str:
    """An id that survives reordering and reloading: a hash of the text itself."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Split:
    """Columnar examples: ids, texts, gold labels (class indices) and optional weak probabilities.

    Binary splits (n_classes 2) keep the shapes every stored trial was trained with: `weak_probs` is
    each example's probability of class 1. With more classes it is a row of class probabilities.
    """

    ids: list[str]
    texts: list[str]
    labels: np.ndarray
    weak_probs: np.ndarray | None = None
    n_classes: int = 2

    def __post_init__(self) -> None:
        n = len(self.texts)
        if len(self.ids) != n or len(self.labels) != n:
            raise ValueError("ids, texts and labels must have the same length")
        if self.n_classes < 2:
            raise ValueError("a task needs at least two classes")
        if self.weak_probs is not None:
            shape = (n,) if self.n_classes == 2 else (n, self.n_classes)
            if np.shape(self.weak_probs) != shape:
                raise ValueError(f"weak_probs must have shape {shape}, not {np.shape(self.weak_probs)}")
        if n and not np.isin(self.labels, np.arange(self.n_classes)).all():
            raise ValueError("labels must be 0 or 1" if self.n_classes == 2 else f"labels must be 0 to {self.n_classes - 1}")

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices: np.ndarray | list[int]) -> "Split":
        idx = np.asarray(indices, dtype=np.int64)
        return Split(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            weak_probs=None if self.weak_probs is None else self.weak_probs[idx],
            n_classes=self.n_classes,
        )

    def with_weak_probs(self, weak_probs: np.ndarray) -> "Split":
        return Split(self.ids, self.texts, self.labels, np.asarray(weak_probs, dtype=np.float32), self.n_classes)

    @property
    def positive_rate(self) -> float:
        return float(self.labels.mean()) if len(self) else float("nan")

    @property
    def class_rates(self) -> np.ndarray:
        """Each class's share of the split's gold labels."""
        return np.bincount(self.labels, minlength=self.n_classes) / max(len(self), 1)

    @staticmethod
    def from_records(records: list[tuple[str, int]], n_classes: int = 2) -> "Split":
        texts = [t for t, _ in records]
        return Split(
            ids=[stable_id(t) for t in texts],
            texts=texts,
            labels=np.array([int(y) for _, y in records], dtype=np.int64),
            n_classes=n_classes,
        )


@dataclass(frozen=True)
class Task:
    """A classification task: labels are bought from `pool`, accuracy is read on `test`.

    `classes` names the classes in label order; a binary task's are "0" and "1" (its prompts have
    always shown those), and only a task of three or more classes trains a wider head.
    """

    name: str
    pool: Split
    test: Split
    description: str = ""
    meta: dict = field(default_factory=dict)
    classes: tuple[str, ...] = BINARY_CLASSES

    def __post_init__(self) -> None:
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f"a task needs two or more distinct class names, not {self.classes}")
        if self.pool.n_classes != self.n_classes or self.test.n_classes != self.n_classes:
            raise ValueError("the pool and test splits must have the task's number of classes")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def has_own_weak_labels(self) -> bool:
        return self.pool.weak_probs is not None


def balance(split: Split, rng: np.random.Generator) -> Split:
    """Undersample the majority class to 50/50, keeping a random order (the paper's balancing)."""
    pos = np.flatnonzero(split.labels == 1)
    neg = np.flatnonzero(split.labels == 0)
    n = min(len(pos), len(neg))
    keep = np.concatenate([rng.choice(pos, n, replace=False), rng.choice(neg, n, replace=False)])
    rng.shuffle(keep)
    return split.take(keep)


def dedupe(split: Split) -> Split:
    """Drop repeated texts: a repeated text would leak between pool and test via its stable id."""
    seen: set[str] = set()
    keep = []
    for i, sid in enumerate(split.ids):
        if sid not in seen:
            seen.add(sid)
            keep.append(i)
    return split.take(keep)


def split_pool_test(split: Split, n_test: int, rng: np.random.Generator) -> tuple[Split, Split]:
    """Carve a class-balanced test set of `n_test` out of `split`; the rest is the pool."""
    half = n_test // 2
    pos = np.flatnonzero(split.labels == 1)
    neg = np.flatnonzero(split.labels == 0)
    if len(pos) < half or len(neg) < half:
        raise ValueError(f"not enough examples of each class for a balanced test set of {n_test}")
    test_idx = np.concatenate([rng.choice(pos, half, replace=False), rng.choice(neg, half, replace=False)])
    return _carve(split, test_idx, rng)


def split_stratified(split: Split, n_test: int, rng: np.random.Generator) -> tuple[Split, Split]:
    """Carve a test set of `n_test` out of `split` that keeps each class's share (K > 2 classes: chance
    is then the commonest class's rate, the same in pool and test); the rest is the pool."""
    counts = np.bincount(split.labels, minlength=split.n_classes)
    take = np.floor(counts * n_test / len(split)).astype(int)
    for c in np.argsort(-(counts * n_test / len(split) - take), kind="stable")[: n_test - take.sum()]:
        take[c] += 1  # the largest remainders round up, so the test set holds exactly n_test
    test_idx = np.concatenate([rng.choice(np.flatnonzero(split.labels == c), take[c], replace=False)
                               for c in range(split.n_classes)])
    return _carve(split, test_idx, rng)


def _carve(split: Split, test_idx: np.ndarray, rng: np.random.Generator) -> tuple[Split, Split]:
    """(pool, test): the test examples in a shuffled order, the rest, shuffled too, as the pool."""
    rng.shuffle(test_idx)
    pool_mask = np.ones(len(split), dtype=bool)
    pool_mask[test_idx] = False
    pool_idx = np.flatnonzero(pool_mask)
    rng.shuffle(pool_idx)
    return split.take(pool_idx), split.take(test_idx)


def split_by_groups(
    labels: np.ndarray, groups: np.ndarray, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pool and test indices, the test set made of whole balanced groups (n_test examples).

    A group holds statements that must stay on one side of the split. Mirror statements: a pool
    holding "capital of A is cap(B)" (false) would teach a model that reads surface cues to call the
    test's "capital of A is cap(A)" false. A true and a false statement showing the same answer: a
    lone test statement would tip its answer's exact true/false tie in the pool against itself (a
    plain balanced split of `cities` lets "the answer's usual label in the pool" score 0.41). Only
    groups with as many true as false statements are drawn, so the test set is 50/50 and each
    answer stays balanced in both sets.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups.tolist()):
        members[g].append(i)
    balanced = [g for g in sorted(members) if 2 * int(labels[members[g]].sum()) == len(members[g])]
    test_idx: list[int] = []
    for g in rng.permutation(balanced).tolist():
        if len(test_idx) + len(members[g]) <= n_test:
            test_idx += members[g]
    if len(test_idx) != n_test:
        raise ValueError(f"not enough balanced groups for a test set of {n_test}")
    test_idx = rng.permutation(test_idx)
    pool_mask = np.ones(len(labels), dtype=bool)
    pool_mask[test_idx] = False
    return rng.permutation(np.flatnonzero(pool_mask)), test_idx
