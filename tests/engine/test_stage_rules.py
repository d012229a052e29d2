"""The rules that keep a stage honest: it can decline (keep its starting state), small stages train a
fixed schedule on every label, and accuracy is read at a threshold placed by the class balance."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from worker.engine.metrics import accuracy, auroc
from worker.engine.methods.context import prior_threshold
from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.prompts import few_shot_prompt, shuffled_shots
from worker.engine.runtime import pick_runtime, seed_everything
from worker.engine.spec import Recipe, recipe_params
from worker.engine.tasks import BUILTIN_TASKS, get_task
from worker.engine.training.classifier import build_classifier
from worker.engine.training.loop import MAX_UNVALIDATED_EPOCHS, Batcher, Schedule, StageData, input_limit, train_stage

GOOD = ["wonderful", "excellent", "delightful", "superb", "lovely", "brilliant", "marvelous", "fantastic"]
BAD = ["terrible", "awful", "dreadful", "horrible", "miserable", "appalling", "atrocious", "dismal"]
THINGS = ["meal", "film", "trip", "book", "song", "hotel", "game", "show"]


def sentiment_data(flip_training: bool) -> StageData:
    texts = [f"What a {a} {t}." for a, t in itertools.product(GOOD + BAD, THINGS)]
    labels = np.array([1 if t.split()[2] in GOOD else 0 for t in texts])
    order = np.random.default_rng(0).permutation(len(texts))
    val, train = order[:48], order[48:]
    targets = labels[train].astype(np.float32)
    return StageData(
        train_texts=[texts[i] for i in train],
        train_targets=1 - targets if flip_training else targets,
        val_texts=[texts[i] for i in val],
        val_labels=labels[val],
    )


@pytest.fixture(scope="module")
def minilm():
    model = resolve_model("minilm-l6")
    return model, load_tokenizer(model), pick_runtime()


def trained_then(minilm, second_params, flip: bool):
    model, tokenizer, runtime = minilm
    seed_everything(0)
    classifier = build_classifier(model, runtime)
    batcher = Batcher(tokenizer, runtime, 32)
    first = recipe_params("fast", {"max_steps_per_stage": 12, "eval_every": 4})
    train_stage("weak", classifier, batcher, sentiment_data(False), first, np.random.default_rng(0))
    after_first = classifier.trainable_state()
    second = train_stage("gold", classifier, batcher, sentiment_data(flip), second_params, np.random.default_rng(1))
    return classifier, after_first, second


def test_a_stage_that_only_makes_things_worse_keeps_its_starting_state(minilm):
    # Training on inverted labels drags validation AUROC down from where the first stage left it.
    params = recipe_params("fast", {"lr": 1e-2, "max_steps_per_stage": 12, "eval_every": 4, "patience": 2})
    classifier, after_first, stage = trained_then(minilm, params, flip=True)
    assert stage.start_val_auroc is not None and stage.start_val_auroc > 0.8
    assert stage.best_step == 0 and stage.best_val_auroc == stage.start_val_auroc
    state = classifier.trainable_state()
    assert all(torch.equal(state[name], after_first[name]) for name in after_first)


def test_the_papers_loop_has_no_such_candidate(minilm):
    params = recipe_params("paper", {"lr": 1e-2, "max_steps_per_stage": 12, "eval_every": 4, "patience": 2})
    _, _, stage = trained_then(minilm, params, flip=True)
    assert stage.start_val_auroc is None and stage.best_step > 0  # it must restore a trained step


def test_a_stage_that_helps_moves_past_its_start(minilm):
    params = recipe_params("fast", {"max_steps_per_stage": 12, "eval_every": 4})
    _, _, stage = trained_then(minilm, params, flip=False)
    assert stage.start_val_auroc is not None and stage.best_val_auroc >= stage.start_val_auroc


# Early stopping as soon as patience allows: no evaluation after the first counts as a gain, and
# patience is an epoch (80 training labels: 3 steps of 32).
IMPATIENT = {"eval_every": 1, "min_delta": 1.0, "patience_examples": 1, "max_examples_per_stage": 2000}


def test_a_stage_from_a_random_head_cannot_stop_in_its_cold_start(minilm):
    model, tokenizer, runtime = minilm
    data = sentiment_data(False)
    steps = {}
    for cold_start in (0, 320):
        seed_everything(0)
        classifier = build_classifier(model, runtime)
        params = recipe_params("fast", {**IMPATIENT, "cold_start_examples": cold_start})
        stage = train_stage("gold", classifier, Batcher(tokenizer, runtime, 32), data, params, np.random.default_rng(0))
        assert stage.rule == "early_stopping" and stage.stopped_early
        assert stage.cold_start_examples == cold_start  # a random head starts at chance
        steps[cold_start] = stage.steps
    assert steps[0] * 32 < 320, "without a cold start this stage stops early: the test would prove nothing"
    assert steps[320] * 32 >= 320  # it saw the whole cold start before stopping


def test_a_stage_that_starts_above_chance_has_no_cold_start(minilm):
    params = recipe_params("fast", {**IMPATIENT, "cold_start_examples": 10_000})
    _, _, stage = trained_then(minilm, params, flip=False)
    assert stage.start_val_auroc > 0.8 and stage.cold_start_examples == 0
    assert stage.stopped_early and stage.examples < 10_000


def test_patience_counts_at_least_an_epoch_of_examples(minilm):
    model, tokenizer, runtime = minilm
    seed_everything(0)
    classifier = build_classifier(model, runtime)
    params = recipe_params("fast", {**IMPATIENT, "cold_start_examples": 0})
    stage = train_stage("gold", classifier, Batcher(tokenizer, runtime, 32), sentiment_data(False), params,
                        np.random.default_rng(0))
    # The start is evaluated (keep_stage_start) and is the only gain; then an epoch of 80 examples
    # without one (steps of 32, 32 and 16), though patience_examples asks for a single example.
    assert stage.start_val_auroc is not None
    assert stage.steps == 3 and stage.examples == 80


def test_a_stage_without_validation_labels_trains_its_fixed_schedule(minilm):
    model, tokenizer, runtime = minilm
    data = sentiment_data(False)
    small = StageData(data.train_texts[:12], data.train_targets[:12], [], np.zeros(0, dtype=np.int64))
    classifier = build_classifier(model, runtime)
    params = recipe_params("fast")
    stage = train_stage("gold", classifier, Batcher(tokenizer, runtime, 32), small, params, np.random.default_rng(0))
    assert stage.rule == "fixed_schedule"
    epochs = min(params.fixed_schedule_examples / 12, MAX_UNVALIDATED_EPOCHS)  # 12 labels: a step an epoch
    assert stage.steps == stage.best_step == math.ceil(epochs)
    assert stage.examples == 12 * stage.steps
    assert stage.start_val_auroc is None and stage.best_val_auroc is None and not stage.stopped_early


def test_prior_threshold_recovers_the_accuracy_a_misplaced_bias_hides():
    # A head trained on labels that said "true" too often: every probability above 0.5, ranking intact.
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(2000) % 2)
    probs = 0.55 + 0.05 * labels + rng.normal(0, 0.03, 2000)
    assert accuracy(labels, probs) < 0.55  # nearly one class at the head's own cut
    pool_labels = rng.permutation(np.arange(1000) % 2)
    pool_probs = 0.55 + 0.05 * pool_labels + rng.normal(0, 0.03, 1000)
    cut = prior_threshold(pool_probs, positive_rate=0.5)
    assert 0.56 < cut < 0.59
    assert accuracy(labels, probs, cut) > 0.75
    assert auroc(labels, probs) > 0.8


def test_prior_threshold_follows_the_class_balance():
    scores = np.linspace(0, 1, 101)
    assert prior_threshold(scores, 0.5) == pytest.approx(0.5)
    assert prior_threshold(scores, 0.2) == pytest.approx(0.8)
    assert prior_threshold(np.zeros(0), 0.5) == 0.0  # log-odds 0: the head's own cut


@pytest.mark.parametrize("recipe", list(Recipe))
@pytest.mark.parametrize("task_name", list(BUILTIN_TASKS))
def test_no_named_recipe_truncates_prompted_inputs(recipe, task_name, minilm):
    model, tokenizer, runtime = minilm
    task = get_task(task_name)
    params = recipe_params(recipe)
    config = build_config(model)
    rng = np.random.default_rng(0)
    shots = list(zip(task.pool.texts[:50], task.pool.labels[:50].tolist()))
    formatter = lambda text: few_shot_prompt(shuffled_shots(shots, params.n_shots, rng), text)  # noqa: E731
    batcher = Batcher(tokenizer, runtime, input_limit(params, config), formatter)
    longest = max(task.pool.texts + task.test.texts, key=len)
    batcher([longest, *task.test.texts[:200]])
    assert batcher.truncated == 0, f"{recipe} cut {batcher.truncated} of {task_name}'s prompted inputs"


def build_config(model):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model.path)


def test_unvalidated_stages_see_each_label_at_most_64_times():
    fast = recipe_params("fast")
    assert Schedule.for_stage(4, fast, validated=False).total_steps == MAX_UNVALIDATED_EPOCHS == 64
    # Validated: early stopping decides, under the hard bound of max_examples_per_stage.
    assert Schedule.for_stage(4, fast).total_steps == fast.max_examples_per_stage // 4
    # A fixed schedule is fixed_schedule_examples long: 64 labels see 64 epochs, 200 labels 20.
    assert Schedule.for_stage(64, fast, validated=False).total_steps == 64 * 2
    assert Schedule.for_stage(200, fast, validated=False).total_steps == math.ceil(4096 / 200 * 7)


def test_saturated_heads_keep_their_order_in_log_odds():
    # Probabilities of 1 - 1e-30 and 1 - 1e-40 are both 1.0 in floating point; their log-odds are not.
    scores = np.array([69.0, 92.0, 70.0, 91.0])
    labels = np.array([0, 1, 0, 1])
    cut = prior_threshold(scores, 0.5)
    assert accuracy(labels, scores, cut) == 1.0
    assert (1 / (1 + np.exp(-scores)) == 1.0).all()
