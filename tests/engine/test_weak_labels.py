"""Weak labelers: parsing their names, the bag-of-words labeler, its cache, and a task's own labels."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from worker.engine.settings import engine_settings
from worker.engine.tasks import Split, Task
from worker.engine.weak_labels import LabelerSpec, WeakLabelerError, parse_labeler, weak_labels

# The package re-exports the function `weak_labels` under the module's name: fetch the module itself.
wl = importlib.import_module("worker.engine.weak_labels")
# The default labeler's size is a tuning choice (see the module docstring); its name carries it.
N = wl._BOW_DEFAULT_N

# --------------------------------------------------------------------------- parse_labeler


@pytest.mark.parametrize(
    "text, expected, name",
    [
        ("default", LabelerSpec("sft", model="minilm-l3", n_train=8000), "sft:minilm-l3:8000"),
        ("bow", LabelerSpec("bow", n_train=N), f"bow:{N}"),
        ("bow:250", LabelerSpec("bow", n_train=250), "bow:250"),
        ("sft:minilm-l6", LabelerSpec("sft", model="minilm-l6", n_train=8000), "sft:minilm-l6:8000"),
        ("sft:minilm-l6:500", LabelerSpec("sft", model="minilm-l6", n_train=500), "sft:minilm-l6:500"),
        ("sft:org/name", LabelerSpec("sft", model="org/name", n_train=8000), "sft:org/name:8000"),
        ("sft:org/name:300", LabelerSpec("sft", model="org/name", n_train=300), "sft:org/name:300"),
        ("sft:/models/my-model:40", LabelerSpec("sft", model="/models/my-model", n_train=40),
         "sft:/models/my-model:40"),
        ("task", LabelerSpec("task"), "task"),
    ],
)
def test_parse_labeler_accepts(text, expected, name):
    spec = parse_labeler(text)
    assert spec == expected
    assert spec.name == name


@pytest.mark.parametrize(
    "junk",
    ["", "bogus", "BOW", "bow:abc", "bow:1.5", "bow:12:3", "bow:", "bow:0", "bow:-5", "sft", "sft:", "sft:m:",
     "sft:m:-1", "task:x", "gold"],
)
def test_parse_labeler_rejects_junk(junk):
    with pytest.raises(WeakLabelerError, match="is not one of"):
        parse_labeler(junk)


def test_weak_labeler_error_is_a_value_error():
    assert issubclass(WeakLabelerError, ValueError)


# --------------------------------------------------------------------------- a synthetic task

GOOD = ["splendid", "lovely"]
BAD = ["awful", "dreadful"]
FILLER = ["apple", "river", "chair", "cloud", "pencil", "garden", "window", "engine"]


def cue_task(n: int = 200, name: str = "cue", seed: int = 0, weak_probs: np.ndarray | None = None) -> Task:
    """Label 1 exactly when the text holds a 'good' word: a bag of words learns it from a few dozen."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        cue = (GOOD if y else BAD)[rng.integers(2)]
        words = [cue, *rng.choice(FILLER, 2), f"item{i}"]
        texts.append(" ".join(rng.permutation(words)))
        labels.append(y)
    pool = Split(ids=[f"{name}-{seed}-{i}" for i in range(n)], texts=texts, labels=np.array(labels))
    if weak_probs is not None:
        pool = pool.with_weak_probs(weak_probs)
    test = Split(ids=["t0", "t1"], texts=["splendid apple", "awful apple"], labels=np.array([1, 0]))
    return Task(name=name, pool=pool, test=test)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELMIX_CACHE_DIR", str(tmp_path))
    engine_settings.cache_clear()
    assert engine_settings().cache_dir == tmp_path
    yield tmp_path
    engine_settings.cache_clear()  # the next test reads the real environment again


def test_bow_labeler_removes_its_training_examples(cache_dir):
    task = cue_task(200)
    result = weak_labels(task, "bow")
    assert result.labeler == f"bow:{N}"
    assert result.n_labeler_train == 50  # capped at a quarter of the pool
    assert len(result.pool) == 150
    assert set(result.pool.ids) < set(task.pool.ids)
    # The held-out examples keep their texts and gold labels.
    index = {i: k for k, i in enumerate(task.pool.ids)}
    for i, text, label in zip(result.pool.ids, result.pool.texts, result.pool.labels):
        assert task.pool.texts[index[i]] == text and task.pool.labels[index[i]] == label


def test_bow_labeler_probabilities(cache_dir):
    result = weak_labels(cue_task(200), "bow")
    probs = result.pool.weak_probs
    assert probs is not None and len(probs) == len(result.pool)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert len(np.unique(probs)) > 10  # soft, not hard labels
    assert result.accuracy > 0.9  # the cue word is easy
    assert wl.describe(result)["n_labeled"] == 150


def test_bow_labeler_train_size(cache_dir):
    task = cue_task(200)
    small = weak_labels(task, "bow:20")
    assert small.labeler == "bow:20" and small.n_labeler_train == 20 and len(small.pool) == 180
    assert N > 50  # so the default is capped at a quarter of this pool, as below
    capped = weak_labels(task, "bow:5000")
    assert capped.n_labeler_train == 50


def test_bow_labeler_split_is_fixed_per_task(cache_dir):
    task = cue_task(200)
    assert weak_labels(task, "bow:20").pool.ids == weak_labels(task, "bow:20").pool.ids


def test_too_small_a_pool_is_refused(cache_dir):
    with pytest.raises(WeakLabelerError, match="too small"):
        weak_labels(cue_task(12), "bow")


def test_weak_labels_are_cached(cache_dir, monkeypatch):
    task = cue_task(200)
    first = weak_labels(task, "bow")
    files = list((cache_dir / "weak_labels" / "cue").glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith(f"bow-{N}-v{wl.LABELER_VERSION}-")

    def no_training(*_args, **_kwargs):
        raise AssertionError("the weak labeler ran again instead of reading the cache")

    monkeypatch.setattr(wl, "_bow_probs", no_training)
    second = weak_labels(task, "bow")
    assert second.pool.ids == first.pool.ids
    assert np.array_equal(second.pool.weak_probs, first.pool.weak_probs)
    assert second.n_labeler_train == first.n_labeler_train

    # Another labeler, or the same task name with another pool, is not served from this cache.
    with pytest.raises(AssertionError, match="ran again"):
        weak_labels(task, "bow:20")
    with pytest.raises(AssertionError, match="ran again"):
        weak_labels(cue_task(200, seed=1), "bow")


def test_cache_holds_what_was_computed(cache_dir):
    task = cue_task(200)
    result = weak_labels(task, "bow")
    (path,) = (cache_dir / "weak_labels" / "cue").glob("*.npz")
    cached = np.load(path)
    assert list(cached["ids"]) == result.pool.ids
    assert np.allclose(cached["probs"], result.pool.weak_probs)


def test_a_task_with_its_own_weak_labels_uses_them_by_default(cache_dir, monkeypatch):
    own = np.linspace(0.01, 0.99, 200).astype(np.float32)
    task = cue_task(200, weak_probs=own)
    assert task.has_own_weak_labels
    monkeypatch.setattr(wl, "_bow_probs", lambda *_: pytest.fail("the default must not train a labeler"))
    monkeypatch.setattr(wl, "_sft_probs", lambda *_: pytest.fail("the default must not train a labeler"))
    result = weak_labels(task)
    assert result.labeler == "task" and result.n_labeler_train == 0
    assert result.pool is task.pool
    assert np.array_equal(result.pool.weak_probs, own)
    assert weak_labels(task, "task").pool is task.pool


def test_an_explicit_labeler_overrides_the_tasks_own_labels(cache_dir):
    own = np.full(200, 0.5, dtype=np.float32)
    result = weak_labels(cue_task(200, weak_probs=own), "bow")
    assert result.labeler == f"bow:{N}" and result.n_labeler_train == 50
    assert not np.allclose(result.pool.weak_probs, 0.5)


def test_task_labeler_needs_the_tasks_own_labels(cache_dir):
    with pytest.raises(WeakLabelerError, match="brought no weak labels"):
        weak_labels(cue_task(200), "task")


def test_default_is_spelled_out_for_trial_keys():
    assert wl.default_labeler_name("default") == "sft:minilm-l3:8000"
    assert wl.default_labeler_name("default", task_has_weak_labels=True) == "task"
    assert wl.default_labeler_name("bow") == f"bow:{N}"
    with pytest.raises(WeakLabelerError):
        wl.default_labeler_name("bogus")


def test_labeler_train_size_is_what_leaves_the_pool():
    assert wl.labeler_train_size(10_000, "bow:300") == 300
    assert wl.labeler_train_size(10_000, "default") == wl.labeler_train_size(10_000, wl.DEFAULT_LABELER)
    assert wl.labeler_train_size(1_000, "sft:minilm-l3") == 250  # at most a quarter of the pool
    assert wl.labeler_train_size(1_000, "task") == 0
    assert wl.labeler_train_size(1_000, "default", task_has_weak_labels=True) == 0


def test_trained_labels_are_centered_on_the_tasks_balance():
    # Every example above 0.5 (a labeler that learned "true" as its prior), ranking intact.
    probs = np.linspace(0.55, 0.95, 1001)
    shifted = wl.centered(probs, positive_rate=0.5)
    assert (shifted > 0.5).mean() == pytest.approx(0.5, abs=0.002)
    assert np.array_equal(np.argsort(shifted, kind="stable"), np.argsort(probs, kind="stable"))
    assert (wl.centered(probs, positive_rate=0.25) > 0.5).mean() == pytest.approx(0.25, abs=0.002)


@pytest.mark.parametrize(
    "accuracy, n, says",
    [(0.50, 20_000, "at chance"), (0.52, 400, "at chance"), (0.45, 20_000, "below chance"), (0.53, 20_000, "barely"),
     (0.70, 20_000, None)],
)
def test_quality_warnings(accuracy, n, says):
    warnings = wl.quality_warnings(accuracy, n)
    assert (warnings == []) if says is None else (len(warnings) == 1 and says in warnings[0])
