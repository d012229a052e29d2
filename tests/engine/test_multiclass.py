"""Tasks of K > 2 classes: the K-way head, its losses and metrics, the built-in word_categories task,
and every method end to end on it. Binary tasks train exactly as before (the engine fingerprint,
tests/engine/test_engine_fingerprint.py, pins that); here the K = 2 forms are checked against the
binary ones they must equal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worker.engine import TrialSpec, run_trial
from worker.engine.methods.context import decision_cut, gold_targets, hard, prior_biases
from worker.engine.metrics import above_chance, accuracy, auroc, entropy, macro_f1, most_uncertain, predicted_classes
from worker.engine.tasks import BUILTIN_TASKS, Split, Task, get_task
from worker.engine.tasks.categories import CATEGORIES, word_categories_task
from worker.engine.tasks.lexicon import families
from worker.engine.training.losses import balanced_hardening, logconf_targets, soft_cross_entropy, soft_targets
from worker.engine.weak_labels import calibration_error, quality_warnings, temperature_calibrated

from test_trials_e2e import TINY


@pytest.fixture(scope="module")
def categories() -> Task:
    return get_task("word_categories")


# --- the task ---------------------------------------------------------------------------------------

def test_word_categories_is_a_built_in_task_of_five_named_classes(categories):
    assert BUILTIN_TASKS["word_categories"] is word_categories_task
    assert categories.classes == tuple(CATEGORIES) == ("animal", "plant", "person", "artifact", "food")
    assert categories.n_classes == categories.pool.n_classes == categories.test.n_classes == 5
    assert len(categories.test) == 1000 and len(categories.pool) >= 10_000
    assert set(np.unique(categories.pool.labels)) == set(range(5))
    # WordNet's proportions, not 1/5 each: chance is the commonest class's rate.
    rates = categories.test.class_rates
    assert rates.sum() == pytest.approx(1.0) and 0.3 < rates.max() < 0.4 and rates.min() < 0.1


def test_word_categories_is_deterministic_and_keeps_word_families_apart(categories):
    again = word_categories_task()
    assert again.pool.texts == categories.pool.texts and (again.test.labels == categories.test.labels).all()
    words = lambda split: {t.split('"')[1] for t in split.texts}  # noqa: E731
    pool, test = words(categories.pool), words(categories.test)
    assert not pool & test
    family = families(pool | test)
    assert not {family[w] for w in pool} & {family[w] for w in test}


def test_a_bag_of_words_learns_nothing_beyond_the_commonest_class(categories):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(categories.pool.texts), categories.pool.labels)
    bow = float(np.mean(model.predict(vectorizer.transform(categories.test.texts)) == categories.test.labels))
    assert abs(bow - categories.test.class_rates.max()) <= 0.05


def test_a_split_checks_its_labels_and_weak_probabilities_against_its_classes():
    with pytest.raises(ValueError, match="0 to 2"):
        Split(["a"], ["a"], np.array([3]), n_classes=3)
    with pytest.raises(ValueError, match="shape"):
        Split(["a"], ["a"], np.array([1]), weak_probs=np.array([0.5]), n_classes=3)
    with pytest.raises(ValueError, match="distinct class names"):
        Task("t", Split(["a"], ["a"], np.array([0])), Split(["b"], ["b"], np.array([1])), classes=("x", "x"))


# --- losses, targets, metrics -------------------------------------------------------------------------

def test_the_k_way_forms_equal_the_binary_ones_at_k_2():
    p = torch.tensor([0.1, 0.7, 0.5])
    logits = torch.tensor([[0.2, -0.3], [1.0, 2.0], [0.0, 0.0]])
    rows = torch.stack([1 - p, p], dim=1)
    assert torch.equal(soft_targets(p), rows) and torch.equal(soft_targets(rows), rows)
    assert soft_cross_entropy(logits, soft_targets(p)) == soft_cross_entropy(logits, rows)
    probs = np.array([0.2, 0.9, 0.5])
    assert np.allclose(entropy(probs), entropy(np.stack([1 - probs, probs], axis=1)))
    split = Split(["a", "b"], ["a", "b"], np.array([0, 1]))
    assert gold_targets(split).tolist() == [0.0, 1.0]


def test_gold_targets_and_hard_labels_of_k_classes():
    split = Split(["a", "b", "c"], ["a", "b", "c"], np.array([2, 0, 1]), n_classes=3)
    assert gold_targets(split).tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert hard(np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])).tolist() == [2, 0]


def test_uncertainty_sampling_ranks_rows_by_their_entropy():
    probs = np.array([[0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0], [0.6, 0.2, 0.2]])
    assert entropy(probs)[1] == pytest.approx(math.log(3))
    assert most_uncertain(probs, 4).tolist() == [1, 3, 2, 0]


def test_multiclass_logconf_hardens_to_the_weak_labels_balance():
    torch.manual_seed(0)
    logits = torch.randn(60, 3) + torch.tensor([2.0, 0.0, 0.0])  # the model favours class 0
    weak = torch.eye(3)[torch.arange(60) % 3]  # the weak labels are balanced
    hardened = balanced_hardening(torch.softmax(logits, dim=-1), weak.mean(dim=0))
    assert hardened.sum(dim=1).tolist() == [1.0] * 60
    counts = hardened.sum(dim=0)
    assert (counts - 20).abs().max() <= 3, counts  # not 60 rows of class 0
    mixed = logconf_targets(logits, weak, 0.5)
    assert torch.allclose(mixed.sum(dim=1), torch.ones(60))
    assert torch.equal(logconf_targets(logits, weak, 0.0), weak)


def test_predictions_accuracy_and_macro_scores_of_k_classes():
    scores = np.log(np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.4, 0.1, 0.5], [0.5, 0.4, 0.1]]))
    labels = np.array([0, 1, 2, 1])
    assert predicted_classes(scores).tolist() == [0, 1, 2, 0]
    assert predicted_classes(scores, np.array([0.0, 0.3, 0.0])).tolist() == [0, 1, 2, 1]
    assert accuracy(labels, scores, 0.0) == 0.75
    assert macro_f1(labels, scores, 0.0, 3) == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)
    assert macro_f1(labels, scores, 0.0, 4) == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 4)  # a class never seen: 0
    perfect = np.eye(3)[labels]
    assert auroc(labels, perfect) == 1.0 and auroc(np.zeros(4, int), perfect) is None


def test_a_multiclass_seed_learned_only_when_its_macro_auroc_is_clearly_above_chance():
    labels = np.arange(300) % 3
    assert above_chance(0.75, labels, n_classes=3)
    assert not above_chance(0.52, labels, n_classes=3)
    assert not above_chance(None, labels, n_classes=3)


def test_prior_biases_predict_each_class_at_the_tasks_rate():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2000, 4)) + np.array([1.5, 0, 0, 0])  # a head that favours class 0
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    want = np.array([0.1, 0.2, 0.3, 0.4])
    shares = np.bincount(predicted_classes(log_probs, prior_biases(log_probs, want)), minlength=4) / 2000
    assert np.abs(shares - want).max() < 0.02
    pool = Split([str(i) for i in range(8)], [str(i) for i in range(8)], np.array([0, 1, 2, 3, 3, 3, 2, 1]), n_classes=4)
    assert np.shape(decision_cut(log_probs[:8], pool)) == (4,)


def hesitant_head(seed: int, n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities of a head whose classes lie within a fraction of a nat of each other and
    which, at its own argmax, never names the first and last classes (as word_categories' 256 gold
    labels, seed 0, left one), with the balance it should predict."""
    from scipy.special import log_softmax

    want = np.array([0.15, 0.12, 0.32, 0.35, 0.06])
    rng = np.random.default_rng(seed)
    labels = rng.choice(5, n, p=want)
    logits = 0.3 * (rng.normal(size=(n, 5)) + np.eye(5)[labels]) + np.array([-1, 0.5, 0.5, 0.5, -1])
    return log_softmax(logits, axis=1), want


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prior_biases_balance_a_hesitant_head(seed):
    # The rule before (bias += 0.5 * (log want - log share), 50 rounds) swung between classes on such
    # a head and ended 0.36-0.63 off the balance; test accuracy fell from 0.587 at argmax to 0.192.
    log_probs, want = hesitant_head(seed)
    assert (np.bincount(log_probs.argmax(axis=1), minlength=5)[[0, 4]] == 0).all()
    shares = np.bincount(predicted_classes(log_probs, prior_biases(log_probs, want)), minlength=5) / len(log_probs)
    assert np.abs(shares - want).max() < 0.01
    # The log-confidence loss hardens a batch by the same biases.
    batch = torch.from_numpy(np.exp(log_probs[:64])).float()
    hardened = balanced_hardening(batch, torch.from_numpy(want).float())
    assert np.abs(hardened.mean(dim=0).numpy() - want).max() < 0.04  # 64 rows: a share moves in steps of 1/64


def test_temperature_scaling_keeps_each_rows_ranking_and_fits_its_confidence():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 500)
    # Overconfident log-probabilities: right 70% of the time at a stated ~0.99.
    right = rng.random(500) < 0.7
    top = np.where(right, labels, (labels + 1) % 3)
    logits = np.full((500, 3), -5.0)
    logits[np.arange(500), top] = 5.0
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    calibrated = temperature_calibrated(log_probs, log_probs, labels)
    assert (calibrated.argmax(axis=1) == top).all()
    assert calibration_error(labels, calibrated) < 0.05 < calibration_error(labels, np.exp(log_probs))


def test_weak_labels_are_at_chance_against_the_commonest_class_not_one_half():
    assert quality_warnings(0.45, 1000, chance=0.35) == []
    assert "chance 0.400" in quality_warnings(0.41, 1000, chance=0.40)[0]
    assert "chance 0.5" not in quality_warnings(0.5, 1000)[0]  # binary messages read as before


# --- trials end to end ----------------------------------------------------------------------------------

def tiny_spec(method: str, model: str = "minilm-l6", n_weak: int = 40, n_gold: int = 20, **params) -> TrialSpec:
    return TrialSpec(task="word_categories", model=model, method=method, n_weak=n_weak, n_gold=n_gold, seed=0,
                     weak_labeler="bow", recipe="fast", params={**TINY, **params})


@pytest.mark.parametrize("method", ["seq_sft", "logconf_sft", "uncertainty_sft", "prompted_sft"])
def test_every_training_method_runs_on_five_classes(method):
    result = run_trial(tiny_spec(method))
    assert [s.name for s in result.stages] == ["weak", "gold"]
    assert result.threshold is None and result.predicted_positive_rate is None
    assert len(result.class_biases) == 5 and sum(result.predicted_class_rates) == pytest.approx(1.0)
    assert 0 <= result.macro_f1 <= 1 and 0 <= result.test_auroc <= 1
    assert 0 <= result.test_accuracy <= 1 and result.weak_label_accuracy is not None


@pytest.mark.slow
def test_a_five_class_trial_learns_from_gold_labels():
    """Not a smoke test: 200 gold labels, a real schedule, a test set of 200; chance is about 0.35."""
    spec = TrialSpec(task="word_categories", method="seq_sft", n_weak=0, n_gold=200, seed=0, recipe="fast",
                     params=dict(n_test=200, max_examples_per_stage=1024))
    result = run_trial(spec)
    assert result.learned and result.test_auroc > 0.65
    assert result.test_accuracy > get_task("word_categories").test.take(np.arange(200)).class_rates.max() + 0.05


@pytest.mark.slow
def test_icl_shows_class_names_and_reads_each_by_its_first_token():
    from worker.engine.methods.icl import class_token_ids
    from worker.engine.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model("smollm2-135m"))
    ids = class_token_ids(tokenizer, tuple(CATEGORIES))
    assert len(set(ids)) == 5
    with pytest.raises(ValueError, match="same token"):
        class_token_ids(tokenizer, ("sea lion", "sea horse", "otter"))
    result = run_trial(tiny_spec("icl", model="smollm2-135m", n_weak=2, n_gold=3))
    assert len(result.class_biases) == 5
    assert result.labels_used["gold_shots"] == 3 and result.labels_used["weak_shots"] == 2
