"""Buying labels from the pool (LabelDraw), validation with both classes, and a stage's data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from worker.engine.methods.context import LabelDraw, MethodOutcome, hard, stage_data, validation_order
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
    draw = LabelDraw(pool, np.random.default_rng(0))
    parts = [draw.take(10), draw.take(15), draw.take(25)]
    ids = [i for part in parts for i in part.ids]
    assert len(ids) == 50 and set(ids) == set(pool.ids)
    assert len(draw.untaken()) == 0
    with pytest.raises(ValueError, match="only 50"):
        draw.take(1)


def test_draws_carry_their_labels_and_weak_probs():
    pool = make_pool()
    part = LabelDraw(pool, np.random.default_rng(0)).take(12)
    for i, text, label, p in zip(part.ids, part.texts, part.labels, part.weak_probs):
        k = int(i[2:])
        assert text == f"text {k}" and label == k % 2 and p == pool.weak_probs[k]


def test_draws_are_seeded():
    pool = make_pool()
    a, b, c = (LabelDraw(pool, np.random.default_rng(s)) for s in (3, 3, 4))
    first_a, first_b, first_c = a.take(10).ids, b.take(10).ids, c.take(10).ids
    assert first_a == first_b
    assert first_a != first_c
    assert a.take(5).ids == b.take(5).ids
    assert first_a != sorted(first_a, key=lambda s: int(s[2:]))  # a random order, not the pool's


def test_take_skips_examples_bought_by_index():
    pool = make_pool(20)
    draw = LabelDraw(pool, np.random.default_rng(0))
    chosen = draw.take_indices(np.array([3, 7, 11]))
    assert chosen.ids == ["id3", "id7", "id11"]
    assert set(draw.untaken().tolist()) == set(range(20)) - {3, 7, 11}
    rest = draw.take(17)
    assert not {"id3", "id7", "id11"} & set(rest.ids)
    assert len(set(rest.ids)) == 17


def test_an_example_is_never_bought_twice():
    pool = make_pool(20)
    draw = LabelDraw(pool, np.random.default_rng(0))
    first = draw.take(5)
    again = np.array([int(first.ids[0][2:])])
    with pytest.raises(ValueError, match="twice"):
        draw.take_indices(again)
    assert len(draw.untaken()) == 15  # the refused purchase changed nothing


# --------------------------------------------------------------------------- validation_order


def test_validation_order_swaps_in_the_other_class():
    labels = np.array([1, 1, 1, 0, 0])
    order = validation_order(labels, 2)
    assert order.tolist() == [0, 3, 2, 1, 4]
    assert set(labels[order[:2]].tolist()) == {0, 1}


def test_validation_order_leaves_a_mixed_sample_alone():
    labels = np.array([0, 1, 1, 1, 0, 0])
    assert validation_order(labels, 3).tolist() == list(range(6))


def test_validation_order_with_one_class_is_the_identity():
    assert validation_order(np.ones(6, dtype=int), 2).tolist() == list(range(6))


def test_validation_holds_both_classes_whenever_the_stage_has_both():
    for n in range(3, 9):
        n_val = max(int(0.2 * n), 2)
        for labels in itertools.product((0, 1), repeat=n):
            labels = np.array(labels)
            order = validation_order(labels, n_val)
            assert sorted(order.tolist()) == list(range(n))
            if len(set(labels.tolist())) == 2:
                assert len(set(labels[order[:n_val]].tolist())) == 2, (labels, order)


# --------------------------------------------------------------------------- stage_data


def test_stage_data_counts_and_targets():
    pool = make_pool(20)
    examples = pool.take(np.arange(10))
    targets = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.45, 0.3, 0.2, 0.1, 0.95])
    data = stage_data(examples, targets, n_val=2)
    assert len(data.val_texts) == 2 and len(data.val_labels) == 2
    assert len(data.train_texts) == 8 and len(data.train_targets) == 8
    assert sorted([*data.val_texts, *data.train_texts]) == sorted(examples.texts)
    # The first two are both positive, so validation swaps one negative in (the first one, 0.45).
    assert data.val_texts == ["text 0", "text 5"]
    assert data.val_labels.tolist() == [1, 0]
    by_text = dict(zip(examples.texts, targets))
    assert np.allclose(data.train_targets, [by_text[t] for t in data.train_texts])
    assert data.train_targets.dtype == np.float32
    assert 0.45 not in np.round(data.train_targets, 2).tolist()
    assert np.isclose(data.train_targets, 0.8).any()  # training keeps the soft targets


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
