"""Buying labels from the pool (LabelDraw), validation with both classes, and a stage's data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from worker.engine.methods.context import LabelDraw, MethodOutcome, hard, stage_data, trial_draw, validation_split
from worker.engine.tasks import Split


def make_pool(n: int = 50) -> Split:
    return Split(
        ids=[f"id{i}" for i in range(n)],
        texts=[f"text {i}" for i in range(n)],
        labels=np.array([i % 2 for i in range(n)]),
        weak_probs=np.linspace(0, 1, n).astype(np.float32),
    )


def test_draws_are_disjoint_and_cover_the_pool():
    pool = make_pool()
    draw = trial_draw(pool, 0, np.random.default_rng(0))
    parts = [draw.take_weak(10), draw.take_weak(15), draw.take_weak(25)]
    ids = [i for part in parts for i in part.ids]
    assert len(ids) == 50 and set(ids) == set(pool.ids)
    assert len(draw.untaken()) == 0
    with pytest.raises(ValueError, match="only 50"):
        draw.take_weak(1)


def test_draws_carry_their_labels_and_weak_probs():
    pool = make_pool()
    part = trial_draw(pool, 0, np.random.default_rng(0)).take_weak(12)
    for i, text, label, p in zip(part.ids, part.texts, part.labels, part.weak_probs):
        k = int(i[2:])
        assert text == f"text {k}" and label == k % 2 and p == pool.weak_probs[k]


def test_draws_are_seeded():
    pool = make_pool()
    a, b, c = (trial_draw(pool, s, np.random.default_rng(s)) for s in (3, 3, 4))
    first_a, first_b, first_c = a.take_weak(10).ids, b.take_weak(10).ids, c.take_weak(10).ids
    assert first_a == first_b
    assert first_a != first_c
    assert a.take_gold(5).ids == b.take_gold(5).ids
    assert first_a != sorted(first_a, key=lambda s: int(s[2:]))  # a random order, not the pool's


def test_take_skips_examples_bought_by_index():
    pool = make_pool(20)
    draw = trial_draw(pool, 0, np.random.default_rng(0))
    chosen = draw.take_indices(np.array([3, 7, 11]))
    assert chosen.ids == ["id3", "id7", "id11"]
    assert set(draw.untaken().tolist()) == set(range(20)) - {3, 7, 11}
    rest = draw.take_weak(17)
    assert not {"id3", "id7", "id11"} & set(rest.ids)
    assert len(set(rest.ids)) == 17


def test_an_example_is_never_bought_twice():
    pool = make_pool(20)
    draw = trial_draw(pool, 0, np.random.default_rng(0))
    first = draw.take_weak(5)
    again = np.array([int(first.ids[0][2:])])
    with pytest.raises(ValueError, match="twice"):
        draw.take_indices(again)
    assert len(draw.untaken()) == 15  # the refused purchase changed nothing


def test_a_seeds_gold_labels_are_one_growing_set_whatever_weak_labels_came_first():
    """A mix's gold labels are the first that all gold buys (less any its weak draw took), and a larger
    draw begins with a smaller one: trials of one seed differ by their label counts, not by luck."""
    pool = make_pool(200)
    all_gold = trial_draw(pool, 7, np.random.default_rng(7)).take_gold(60).ids
    assert trial_draw(pool, 7, np.random.default_rng(7)).take_gold(20).ids == all_gold[:20]
    mix = trial_draw(pool, 7, np.random.default_rng(7))
    weak = set(mix.take_weak(30).ids)
    gold = mix.take_gold(20).ids
    assert not weak & set(gold)
    assert gold == [i for i in all_gold if i not in weak][:20]
    assert len(set(gold) & set(all_gold[:20])) >= 20 - len(weak & set(all_gold[:20]))
    weak_first = trial_draw(pool, 7, np.random.default_rng(7)).take_weak(30).ids
    assert sorted(weak) == sorted(weak_first) and weak_first != all_gold[:30]  # weak has its own order


# --------------------------------------------------------------------------- validation_split


def test_validation_is_the_last_bought_and_training_keeps_the_rest_in_order():
    labels = np.array([0, 1, 1, 0, 1, 0])
    val, train = validation_split(labels, 2)
    assert val.tolist() == [4, 5] and train.tolist() == [0, 1, 2, 3]


def test_a_larger_draw_trains_on_every_label_a_smaller_one_trained_on():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    for small, large in [(64, 256), (100, 250), (256, 500), (300, 400)]:
        _, train_small = validation_split(labels[:small], int(0.2 * small))
        _, train_large = validation_split(labels[:large], int(0.2 * large))
        assert set(train_small.tolist()) <= set(train_large.tolist())
        assert set(range(small)) - set(train_small.tolist()) <= set(train_large.tolist())  # and its validation


def test_validation_swaps_in_the_latest_bought_of_the_other_class():
    labels = np.array([1, 0, 0, 1, 1, 1])
    val, train = validation_split(labels, 2)
    assert val.tolist() == [2, 5] and train.tolist() == [0, 1, 3, 4]
    assert set(labels[val].tolist()) == {0, 1}


def test_validation_of_one_class_only_stays_the_last_bought():
    val, train = validation_split(np.ones(6, dtype=int), 2)
    assert val.tolist() == [4, 5] and train.tolist() == [0, 1, 2, 3]
    val, train = validation_split(np.array([0, 1, 0]), 0)
    assert val.tolist() == [] and train.tolist() == [0, 1, 2]


def test_validation_holds_both_classes_whenever_the_stage_has_both():
    for n in range(3, 9):
        n_val = max(int(0.2 * n), 2)
        for labels in itertools.product((0, 1), repeat=n):
            labels = np.array(labels)
            val, train = validation_split(labels, n_val)
            assert sorted([*val.tolist(), *train.tolist()]) == list(range(n)) and len(val) == n_val
            assert train.tolist() == sorted(train.tolist())
            if len(set(labels.tolist())) == 2:
                assert len(set(labels[val].tolist())) == 2, (labels, val)


# --------------------------------------------------------------------------- stage_data


def test_stage_data_counts_and_targets():
    pool = make_pool(20)
    examples = pool.take(np.arange(10))
    targets = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.45, 0.3, 0.2, 0.85, 0.95])
    data = stage_data(examples, targets, n_val=2)
    assert len(data.val_texts) == 2 and len(data.val_labels) == 2
    assert len(data.train_texts) == 8 and len(data.train_targets) == 8
    assert sorted([*data.val_texts, *data.train_texts]) == sorted(examples.texts)
    # The last two are both positive, so validation swaps in the latest-bought negative (0.2).
    assert data.val_texts == ["text 7", "text 9"]
    assert data.val_labels.tolist() == [0, 1]
    assert data.train_texts == [f"text {i}" for i in (0, 1, 2, 3, 4, 5, 6, 8)]  # in the order bought
    by_text = dict(zip(examples.texts, targets))
    assert np.allclose(data.train_targets, [by_text[t] for t in data.train_texts])
    assert data.train_targets.dtype == np.float32
    assert 0.2 not in np.round(data.train_targets, 2).tolist()
    assert np.isclose(data.train_targets, 0.85).any()  # training keeps the soft targets


def test_stage_data_gold_targets():
    examples = make_pool(10)
    data = stage_data(examples, examples.labels.astype("float32"), n_val=2)
    assert data.val_labels.tolist() == [0, 1]
    assert set(data.train_targets.tolist()) == {0.0, 1.0}
    assert len(data.train_texts) == 8


def test_hard_threshold_is_strictly_above_one_half():
    assert hard(np.array([0.0, 0.5, 0.5001, 1.0])).tolist() == [0, 0, 1, 1]


def test_weak_label_accuracy_of_what_was_bought():
    pool = make_pool(10)  # labels alternate 0/1, weak probs rise from 0 to 1
    outcome = MethodOutcome(test_scores=np.zeros(0), weak_bought=[pool.take([0, 1]), pool.take([8, 9]), pool.take([])])
    # hard weak labels: [0, 0] vs [0, 1], and [1, 1] vs [0, 1]: 2 of 4 right
    assert outcome.weak_label_accuracy() == 0.5
    assert MethodOutcome(test_scores=np.zeros(0)).weak_label_accuracy() is None
