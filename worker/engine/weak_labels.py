"""Weak labels: a weaker labeler trained on some gold labels scores the rest of the pool.

The labeler's own training examples leave the pool (their weak labels would be memorized, not
predicted). Results are cached per task and labeler, so each is computed once per machine.

Labelers (the `weak_labeler` of a trial spec):
- `sft:<model>[:N]` (the default is `sft:minilm-l3`): the paper's recipe: fine-tune <model> (LoRA,
  this engine) on N gold labels (N=8000, at most a quarter of the pool) for 3 epochs, then score
  the pool. `minilm-l3` is the packaged MiniLM cut to 3 of its 6 layers: smaller than the strong
  model, as the paper's weak models are. Measured (python -m bench.engine.weak_labelers): on
  city_continents it is 0.72 accurate where `bow` is at chance; builds take minutes once per task.
- `bow[:N]`: word 1-2-gram TF-IDF + logistic regression on N gold labels (N=300): cheap, but on
  tasks without surface cues (every built-in one since version 2) it is at chance.
- `task`: the weak labels the task brought with it (a probability or hard label per example);
  the default for a task that has them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import accuracy, auroc
from .settings import engine_settings
from .tasks import Split, Task

log = logging.getLogger(__name__)

DEFAULT_LABELER = "sft:minilm-l3"
_BOW_DEFAULT_N = 300
_SFT_DEFAULT_N = 8000
_SFT_EPOCHS = 3
_MAX_SFT_EPOCHS = 64
# Bumped when labelers are trained differently, so cached labels of the old way are not served.
# 3: sft labelers' probabilities are Platt-calibrated on their held-out gold labels.
LABELER_VERSION = 3
# The same for tasks of more than two classes, whose labels have their own centring (`centered`).
# 2: centred by class_balance.balancing_biases (engine version 5); two-class labels are unchanged.
MULTICLASS_LABELER_VERSION = 2
# How the labeler trains, fixed here rather than taken from a trial recipe: the strong model's recipes
# change with the engine (spec.ENGINE_VERSION), the weak labels every trial buys must not. These are
# the `fast` recipe's settings when the labels were first measured (engine version 1).
LABELER_PARAMS = dict(lr=1e-3, eval_every=16, keep_stage_start=True, min_val_labels=50, precision="fp32")
LABELER_MIN_EXAMPLES = 2048
# The labeler never takes more than this share of the pool: the rest is what trials buy from.
_MAX_TRAIN_SHARE = 0.25


class WeakLabelerError(ValueError):
    pass


@dataclass(frozen=True)
class WeakLabels:
    """The pool a trial buys from, each example with its weak probability."""

    task: str
    labeler: str
    pool: Split  # weak_probs set; the labeler's training examples removed
    n_labeler_train: int
    build_s: float | None = None  # how long the labeler took to train and score the pool

    @property
    def accuracy(self) -> float:
        return accuracy(self.pool.labels, self.pool.weak_probs)


@dataclass(frozen=True)
class LabelerSpec:
    kind: str  # "bow", "sft" or "task"
    model: str | None = None
    n_train: int = 0

    @property
    def name(self) -> str:
        if self.kind == "task":
            return "task"
        return f"{self.kind}:{self.model}:{self.n_train}" if self.model else f"{self.kind}:{self.n_train}"


def _count(text: str, default: int) -> int:
    if text == "":
        return default
    if not text.isdigit() or int(text) < 4:
        raise ValueError(text)
    return int(text)


def parse_labeler(text: str) -> LabelerSpec:
    text = DEFAULT_LABELER if text == "default" else text
    kind, sep, rest = text.partition(":")
    try:
        if kind == "task" and not sep:
            return LabelerSpec("task")
        if kind == "bow" and (not sep or rest):
            return LabelerSpec("bow", n_train=_count(rest, _BOW_DEFAULT_N))
        if kind == "sft" and rest:
            model, sep, n = rest.rpartition(":")
            if not sep:  # no count given: the whole rest names the model
                model, n = rest, ""
            elif not n:
                raise ValueError(rest)
            if model:
                return LabelerSpec("sft", model=model, n_train=_count(n, _SFT_DEFAULT_N))
    except ValueError:
        pass
    raise WeakLabelerError(
        f"weak_labeler {text!r} is not one of: default, bow[:N], sft:<model>[:N], task (N a count of at least 4)"
    )


def default_labeler_name(labeler: str, task_has_weak_labels: bool = False) -> str:
    """The canonical name of `labeler` ("default" resolved); raises WeakLabelerError if malformed."""
    if labeler == "default" and task_has_weak_labels:
        return "task"
    return parse_labeler(labeler).name


def labeler_train_size(pool_size: int, labeler: str, task_has_weak_labels: bool = False) -> int:
    """How many pool examples `labeler` trains on, and so takes out of what trials can buy."""
    spec = parse_labeler(labeler)
    if spec.kind == "task" or (task_has_weak_labels and labeler == "default"):
        return 0
    return min(spec.n_train, int(pool_size * _MAX_TRAIN_SHARE))


def _labeler_split(task: Task, n_train: int) -> tuple[Split, Split]:
    """The labeler's gold training examples and the pool left to label (a fixed split per task)."""
    n = min(n_train, int(len(task.pool) * _MAX_TRAIN_SHARE))
    if n < 4:
        raise WeakLabelerError(f"task {task.name!r} has too small a pool ({len(task.pool)}) to train a weak labeler")
    order = np.random.default_rng(12345).permutation(len(task.pool))
    return task.pool.take(order[:n]), task.pool.take(order[n:])


def _bow_probs(train: Split, pool: Split) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform(train.texts)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(features, train.labels)
    probs = np.zeros((len(pool), train.n_classes))
    probs[:, model.classes_] = model.predict_proba(vectorizer.transform(pool.texts))  # a class the draw lacked: 0
    return probs[:, 1] if train.n_classes == 2 else probs


def _sft_probs(model_spec: str, train: Split, pool: Split, seed: int = 0) -> np.ndarray:
    # The training modules load torch: imported when a labeler trains, not to read cached labels.
    from .budget import stage_split
    from .methods.context import gold_targets
    from .models import load_tokenizer, resolve_model
    from .runtime import pick_runtime, seed_everything
    from .spec import MethodParams
    from .training.classifier import build_classifier
    from .training.loop import Batcher, StageData, input_limit, predict_scores, train_stage

    seed_everything(seed)
    # fp32 whatever precision trials run in: weak labels are the task's data, cached once per machine,
    # and must be the same labels on every host.
    runtime, model = pick_runtime(), resolve_model(model_spec)
    # With the checkpoint's dropout, as the labels were first measured (MiniLM-L3 without it labels
    # word_sentiment at 0.87, close to what the strong model reaches: no longer a weak labeler).
    classifier = build_classifier(model, runtime, dropout=True, n_classes=train.n_classes)
    # The paper's 3 epochs, but never fewer than LABELER_MIN_EXAMPLES (3 epochs of a small task's few
    # hundred labels left the labeler untrained: AUROC 0.57 on word_sentiment), unless that is over 64
    # epochs of a tiny upload's handful of labels.
    base = MethodParams(**LABELER_PARAMS)
    examples = max(_SFT_EPOCHS * len(train), min(LABELER_MIN_EXAMPLES, _MAX_SFT_EPOCHS * len(train)))
    params = base.model_copy(update={"max_examples_per_stage": examples})
    batcher = Batcher(load_tokenizer(model), runtime, input_limit(params, classifier.backbone.config))
    plan = stage_split(len(train), params)
    data = StageData(
        train_texts=train.texts[plan.n_val :],
        train_targets=gold_targets(train)[plan.n_val :],
        val_texts=train.texts[: plan.n_val],
        val_labels=train.labels[: plan.n_val],
    )
    train_stage("weak-labeler", classifier, batcher, data, params, np.random.default_rng(seed))
    batch = runtime.eval_batch_size(params.eval_batch_size)
    val_scores = predict_scores(classifier, batcher, data.val_texts, batch)
    pool_scores = predict_scores(classifier, batcher, pool.texts, batch)
    if train.n_classes > 2:
        return temperature_calibrated(pool_scores, val_scores, data.val_labels)
    return platt_calibrated(pool_scores, val_scores, data.val_labels)


def platt_calibrated(scores: np.ndarray, val_scores: np.ndarray, val_labels: np.ndarray) -> np.ndarray:
    """Probabilities from a labeler's log-odds, rescaled to be calibrated on its held-out gold labels.

    A briefly trained labeler's probabilities crowd 0.5 (MiniLM-L3 on word_sentiment: 79% accurate,
    mean confidence 0.55, calibration error 0.24): as soft targets they tell a student that every
    example is a near coin flip, and the student, fitting them, stayed below its teacher (0.726
    against 0.786 at $256). Platt scaling (a logistic regression on the log-odds, fitted on the
    labeler's own validation labels, which trials never buy) keeps the ranking and makes each
    probability say how often labels that confident are right. Without both classes held out, the
    scores are returned as probabilities unchanged.
    """
    from sklearn.linear_model import LogisticRegression

    scores = np.asarray(scores, dtype=np.float64)
    if len(np.unique(val_labels)) < 2:
        return 1.0 / (1.0 + np.exp(-scores))
    # A weak L2 penalty: the fit has two parameters and some hundred labels.
    fit = LogisticRegression(C=100.0).fit(np.asarray(val_scores, dtype=np.float64).reshape(-1, 1), val_labels)
    return fit.predict_proba(scores.reshape(-1, 1))[:, 1]


def temperature_calibrated(log_probs: np.ndarray, val_log_probs: np.ndarray, val_labels: np.ndarray) -> np.ndarray:
    """platt_calibrated for K > 2 classes: one temperature, fitted on the labeler's held-out gold labels
    (Guo et al. 2017), divides the log-probabilities; the ranking within each row is kept."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    val = np.asarray(val_log_probs, dtype=np.float64)
    labels = np.asarray(val_labels)

    def nll(log_t: float) -> float:
        return -float(log_softmax(val / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean())

    log_t = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x if len(labels) else 0.0
    return np.exp(log_softmax(np.asarray(log_probs, dtype=np.float64) / np.exp(log_t), axis=1))


def centered(probs: np.ndarray, positive_rate: float | np.ndarray) -> np.ndarray:
    """Shift the labeler's log-odds so its share of positive labels matches the task's balance.

    A labeler's bias is whatever its training left (bow said "true" 63% of the time; a briefly
    trained MiniLM put every example above 0.5), which trials would learn as a prior. The ranking,
    the information a weak label carries, is untouched; trials place their own cut the same way.
    """
    from .class_balance import balancing_biases  # loads scipy: only where labels are built
    from .methods.context import prior_threshold  # loads torch (the training loop): see _sft_probs

    if np.ndim(probs) == 2:  # K > 2 classes: the task's balance is a rate per class
        log_p = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-9, None))
        shifted = log_p + balancing_biases(log_p, positive_rate)
        shifted -= shifted.max(axis=1, keepdims=True)
        return (np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)).astype(np.float32)
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-6, 1 - 1e-6)
    cut = np.clip(prior_threshold(p, positive_rate), 1e-6, 1 - 1e-6)
    logits = np.log(p / (1 - p)) - np.log(cut / (1 - cut))
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def cache_dir_for(task_name: str) -> Path:
    """Where a task's weak labels are cached (one file per labeler and pool)."""
    return engine_settings().cache_dir / "weak_labels" / task_name


def _cache_path(task: Task, labeler: LabelerSpec) -> Path:
    # The pool's ids are in the key: a task rebuilt with other examples gets fresh weak labels.
    fingerprint = hashlib.sha256("\n".join(task.pool.ids).encode()).hexdigest()[:12]
    safe = labeler.name.replace("/", "_").replace(":", "-")
    version = f"{LABELER_VERSION}" if task.n_classes == 2 else f"{LABELER_VERSION}k{MULTICLASS_LABELER_VERSION}"
    return cache_dir_for(task.name) / f"{safe}-v{version}-{fingerprint}.npz"


def _save_atomically(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def weak_labels(task: Task, labeler: str = "default", cached_only: bool = False) -> WeakLabels | None:
    """The task's pool with weak probabilities from `labeler`, computed once and cached.

    With cached_only, None instead of training a labeler that has not run yet (for a request that
    must answer now: training one can take minutes).
    """
    spec = parse_labeler(labeler)
    if task.has_own_weak_labels and spec.kind != "task" and labeler == "default":
        spec = LabelerSpec("task")
    if spec.kind == "task":
        if not task.has_own_weak_labels:
            raise WeakLabelerError(f"task {task.name!r} brought no weak labels of its own")
        return WeakLabels(task.name, "task", task.pool, n_labeler_train=0)

    train, rest = _labeler_split(task, spec.n_train)
    path = _cache_path(task, spec)
    if path.exists():
        cached = np.load(path)
        if list(cached["ids"]) == rest.ids:
            build_s = float(cached["build_s"]) if "build_s" in cached else None
            return WeakLabels(task.name, spec.name, rest.with_weak_probs(cached["probs"]), len(train), build_s)
    if cached_only:
        return None
    log.info("training weak labeler %s on %d gold labels of task %s", spec.name, len(train), task.name)
    started = time.perf_counter()
    probs = _bow_probs(train, rest) if spec.kind == "bow" else _sft_probs(spec.model, train, rest)
    probs = centered(probs, task.pool.positive_rate if task.n_classes == 2 else task.pool.class_rates)
    build_s = time.perf_counter() - started
    _save_atomically(path, ids=np.array(rest.ids), probs=np.asarray(probs, dtype=np.float32), build_s=build_s)
    result = WeakLabels(task.name, spec.name, rest.with_weak_probs(probs), len(train), build_s)
    log.info("weak labels for %s by %s: accuracy %.3f", task.name, spec.name, result.accuracy)
    return result


def calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: how far the stated confidence is from the hit rate, on average."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    confidence, least = probs.max(axis=1), 1.0 / probs.shape[1]  # a confidence runs from 1/K to 1
    hits = probs.argmax(axis=1) == np.asarray(labels)
    which = np.clip(((confidence - least) / (1 - least) * bins).astype(int), 0, bins - 1)
    return float(sum(abs(hits[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def quality_warnings(accuracy_: float, n: int, chance: float = 0.5) -> list[str]:
    """What a person should hear about weak labels this accurate (n: how many were scored; chance: the
    accuracy of always naming the most common class, 0.5 on a balanced binary task)."""
    # A 95% binomial interval: labels whose interval reaches chance are indistinguishable from guessing.
    margin = 1.96 * math.sqrt(chance * (1 - chance) / max(n, 1))
    if accuracy_ - margin <= chance:
        side = "below" if accuracy_ + margin < chance else "at"
        of_chance = "" if chance == 0.5 else f", chance {chance:.3f}"
        return [f"weak labels are {side} chance (accuracy {accuracy_:.3f} on {n} examples{of_chance}): they carry no "
                "signal to learn from; buy gold labels, or use a stronger weak labeler"]
    if accuracy_ < chance + 0.05:
        return [f"weak labels are barely above chance (accuracy {accuracy_:.3f}): expect little from them"]
    return []


def describe(labels: WeakLabels) -> dict:
    """How the weak labels were made and how good they are against the pool's gold labels: the share
    labeled positive for a binary task, each class's share for more classes."""
    pool = labels.pool
    probs, gold = pool.weak_probs, pool.labels
    acc = labels.accuracy
    if pool.n_classes == 2:
        balance = {"labeled_positive_rate": round(float((probs > 0.5).mean()), 4),
                   "gold_positive_rate": round(float(gold.mean()), 4)}
        confidence, chance = np.maximum(probs, 1 - probs), 0.5
    else:
        labeled = np.bincount(probs.argmax(axis=1), minlength=pool.n_classes) / len(gold)
        balance = {"labeled_class_rates": [round(float(r), 4) for r in labeled],
                   "gold_class_rates": [round(float(r), 4) for r in pool.class_rates]}
        confidence, chance = probs.max(axis=1), float(pool.class_rates.max())
    return {
        "task": labels.task,
        "labeler": labels.labeler,
        "n_labeled": len(pool),
        "n_labeler_train": labels.n_labeler_train,
        "accuracy": round(acc, 4),
        "auroc": None if (a := auroc(gold, probs)) is None else round(a, 4),
        **balance,
        "mean_confidence": round(float(confidence.mean()), 4),
        "calibration_error": round(calibration_error(gold, probs), 4),
        "build_s": None if labels.build_s is None else round(labels.build_s, 1),
        "warnings": quality_warnings(acc, len(pool), chance),
    }
