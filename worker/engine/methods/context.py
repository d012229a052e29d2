"""What every method receives (the bought-from pool, model, runtime) and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..budget import LabelPlan
from ..class_balance import balancing_biases
from ..metrics import accuracy
from ..models import ResolvedModel
from ..runtime import Runtime
from ..spec import StageResult, TrialSpec
from ..tasks import Split
from ..tasks.base import BINARY_CLASSES
from ..training.loop import ProgressCallback, StageData


GOLD_ORDER_STREAM = 0x601D  # any fixed value: what matters is that it is not the trial's rng


class LabelDraw:
    """Buys labels from the pool, weak and gold each in their own seeded random order; nothing is ever
    bought twice.

    Two orders make a seed's labels one growing set across a grid: the gold labels a mix buys are the
    first ones all gold buys at any budget (less those its weak draw already took), and a larger
    budget's weak or gold labels begin with a smaller one's. Trials of one seed then differ by the
    label counts a team would choose between, not by which examples happened to be drawn.
    """

    def __init__(self, pool: Split, weak_rng: np.random.Generator, gold_rng: np.random.Generator):
        self.pool = pool
        self._orders = {"weak": weak_rng.permutation(len(pool)), "gold": gold_rng.permutation(len(pool))}
        self._next = {"weak": 0, "gold": 0}
        self._taken = np.zeros(len(pool), dtype=bool)

    def take_weak(self, n: int) -> Split:
        return self._take(n, "weak")

    def take_gold(self, n: int) -> Split:
        return self._take(n, "gold")

    def _take(self, n: int, kind: str) -> Split:
        order, picked = self._orders[kind], []
        while len(picked) < n:
            if self._next[kind] >= len(order):
                raise ValueError(f"the pool has only {len(self.pool)} examples; the trial asked for more")
            i = order[self._next[kind]]
            self._next[kind] += 1
            if not self._taken[i]:
                picked.append(i)
        return self.take_indices(np.array(picked, dtype=np.int64))

    def take_indices(self, indices: np.ndarray) -> Split:
        if self._taken[indices].any():
            raise ValueError("an example was bought twice")
        self._taken[indices] = True
        return self.pool.take(indices)

    def untaken(self) -> np.ndarray:
        return np.flatnonzero(~self._taken)


def trial_draw(pool: Split, seed: int, rng: np.random.Generator) -> LabelDraw:
    """A trial's draw: weak labels in the order of the trial's generator (as before engine version 6),
    gold labels in an order of their own, seeded by the trial's seed alone."""
    return LabelDraw(pool, rng, np.random.default_rng([seed, GOLD_ORDER_STREAM]))


@dataclass
class TrialContext:
    spec: TrialSpec
    plan: LabelPlan
    model: ResolvedModel
    runtime: Runtime
    draw: LabelDraw
    test: Split
    rng: np.random.Generator
    progress: ProgressCallback | None = None
    n_task_test: int = 0  # the task's whole test set, of which `test` may be the first n_test
    classes: tuple[str, ...] = BINARY_CLASSES  # the task's, in label order

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def eval_batch_size(self) -> int:
        return self.runtime.eval_batch_size(self.spec.params.eval_batch_size)


# Unlabeled pool examples scored to place the decision threshold (see prior_threshold).
THRESHOLD_SAMPLE = 512


@dataclass
class MethodOutcome:
    test_scores: np.ndarray  # log-odds of the positive class; K > 2 classes: rows of log-probabilities
    threshold: float | np.ndarray = 0.0  # K > 2 classes: a bias per class (prior_biases)
    stages: list[StageResult] = field(default_factory=list)
    caps: list[str] = field(default_factory=list)  # what the method's params cut short
    weak_bought: list[Split] = field(default_factory=list)  # for the accuracy of weak labels used
    pool_scores_reused: bool = False  # uncertainty_sft read its pool scores from the weak-stage store
    pool_scoring_s: float | None = None  # uncertainty_sft: wall time to score (or read) the pool

    def weak_label_accuracy(self) -> float | None:
        bought = [s for s in self.weak_bought if len(s)]
        if not bought:
            return None
        labels = np.concatenate([s.labels for s in bought])
        probs = np.concatenate([s.weak_probs for s in bought])
        return accuracy(labels, probs)


def unlabeled_sample(ctx: TrialContext) -> list[str]:
    """Texts of pool examples nobody bought: free to score, as uncertainty sampling does too.

    Drawn from a stream of its own, so placing the threshold leaves training's draws alone.
    """
    untaken = ctx.draw.untaken()
    rng = np.random.default_rng([ctx.spec.seed, 0x7E5])
    picked = rng.choice(untaken, min(THRESHOLD_SAMPLE, len(untaken)), replace=False)
    return [ctx.draw.pool.texts[i] for i in picked]


def prior_threshold(pool_scores: np.ndarray, positive_rate: float, default: float = 0.0) -> float:
    """The score above which the task's known share of positives lies on unlabeled pool data.

    The head's own 0.5 cut inherits the class balance of whatever it was trained on last: weak
    labels that say "true" 63% of the time, or a 10-label gold draw that happens to be 7 to 3. Its
    soft targets also crowd predictions near 0.5, so a small shift of the bias sends every test
    example to one class (measured: AUROC 0.62-0.68, accuracy 0.5025). The test sets are balanced by
    construction and the pool's balance is a property of the task, not of any bought label, so the
    cut is placed where that balance says; ranking quality (what AUROC measures) then shows up
    in accuracy instead of being hidden by a misplaced bias.
    """
    if len(pool_scores) == 0:
        return default
    return float(np.quantile(np.asarray(pool_scores, dtype=np.float64), 1.0 - positive_rate))


def prior_biases(pool_log_probs: np.ndarray, class_rates: np.ndarray) -> np.ndarray:
    """prior_threshold for K > 2 classes: a bias per class such that argmax(log-probabilities + bias)
    predicts each class about as often, on unlabeled pool data, as the task's balance says."""
    return balancing_biases(pool_log_probs, class_rates)


def decision_cut(pool_scores: np.ndarray, pool: Split) -> float | np.ndarray:
    """Where predictions are cut: the binary threshold, or the K-class biases, from the pool's balance."""
    if pool.n_classes == 2:
        return prior_threshold(pool_scores, pool.positive_rate)
    return prior_biases(pool_scores, pool.class_rates)


def gold_targets(examples: Split) -> np.ndarray:
    """Training targets from gold labels: 0/1 for a binary task, one-hot rows for more classes."""
    if examples.n_classes == 2:
        return examples.labels.astype("float32")
    return np.eye(examples.n_classes, dtype=np.float32)[examples.labels]


def hard(probs: np.ndarray) -> np.ndarray:
    """Class indices from probabilities: of the positive class (cut at 0.5), or rows over the classes."""
    probs = np.asarray(probs)
    if probs.ndim == 2:
        return np.argmax(probs, axis=1).astype(np.int64)
    return (probs > 0.5).astype(np.int64)


def validation_split(labels: np.ndarray, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) indices: validation is the last n_val bought, holding both classes
    where the stage has both; training keeps the order the rest were bought in.

    Examples arrive in random order, so the last n_val are a random sample, and a larger draw of the
    same order trains on every label a smaller one did (taking validation from the start would hand a
    smaller draw's training labels to validation as the draw grows: a seed's learning curve could then
    fall when it buys more). One swap, with the latest-bought example of the other class, fixes the
    rare one-class sample, without which validation AUROC would be undefined.
    """
    n = len(labels)
    val, train = np.arange(n - n_val, n), np.arange(n - n_val)
    if n_val and len(np.unique(labels[val])) < 2:
        other = np.flatnonzero(labels[train] != labels[val[0]])
        if len(other):
            j = other[-1]
            val[0], train[j] = train[j], val[0]
            train = np.sort(train)
    return val, train


def stage_data(examples: Split, targets: np.ndarray, n_val: int) -> StageData:
    """Split bought examples into training and validation (the last bought), with soft training targets."""
    val, train = validation_split(hard(targets), n_val)
    return StageData(
        train_texts=[examples.texts[i] for i in train],
        train_targets=np.asarray(targets, dtype=np.float32)[train],
        val_texts=[examples.texts[i] for i in val],
        val_labels=hard(targets)[val],
    )
