"""Uncertainty sampling: binary entropy, the most-uncertain ranking, and buying gold labels with it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.engine.budget import plan_labels
from worker.engine.methods.context import TrialContext, trial_draw
from worker.engine.methods.sequential import _buy_uncertain_gold
from worker.engine.metrics import entropy, most_uncertain
from worker.engine.spec import Method, MethodParams, TrialSpec
from worker.engine.tasks import Split


def test_entropy_values():
    h = entropy(np.array([0.5, 0.25, 0.75, 0.0, 1.0]))
    assert h[0] == pytest.approx(math.log(2))
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert h[1] == pytest.approx(expected) and h[2] == pytest.approx(expected)
    assert 0 <= h[3] < 1e-9 and 0 <= h[4] < 1e-9  # clipped, not NaN
    assert not np.isnan(h).any()


def test_entropy_is_highest_at_one_half():
    p = np.linspace(0, 1, 201)
    h = entropy(p)
    assert np.argmax(h) == 100
    assert (np.diff(h[:101]) > 0).all() and (np.diff(h[100:]) < 0).all()


def test_most_uncertain_highest_entropy_first():
    probs = np.array([0.9, 0.5, 0.1, 0.6, 0.45, 0.99, 0.3])
    assert most_uncertain(probs, 3).tolist() == [1, 4, 3]
    assert most_uncertain(probs, 7).tolist() == [1, 4, 3, 6, 0, 2, 5]


def test_most_uncertain_breaks_ties_by_lowest_index():
    # 0.25 and 0.75 have exactly the same entropy in floating point.
    probs = np.array([0.25, 0.75, 0.5, 0.75, 0.25, 0.5])
    assert most_uncertain(probs, 6).tolist() == [2, 5, 0, 1, 3, 4]
    assert most_uncertain(probs[::-1].copy(), 6).tolist() == [0, 3, 1, 2, 4, 5]


def test_most_uncertain_is_deterministic_and_sized():
    probs = np.random.default_rng(0).uniform(size=500).astype(np.float32)
    first = most_uncertain(probs, 50)
    assert np.array_equal(first, most_uncertain(probs, 50))
    assert len(first) == 50 and len(set(first.tolist())) == 50
    distance = np.abs(probs.astype(np.float64) - 0.5)
    assert distance[first].max() <= np.sort(distance)[49] + 1e-12
    assert len(most_uncertain(probs, 0)) == 0
    assert len(most_uncertain(probs[:3], 10)) == 3


# --------------------------------------------------------------------------- buying gold by uncertainty


N_POOL = 40


def make_pool() -> tuple[Split, dict[str, float]]:
    """A pool whose texts map to fixed predicted probabilities: example i is known how unsure."""
    texts = [f"example {i}" for i in range(N_POOL)]
    split = Split(
        ids=[f"id{i}" for i in range(N_POOL)],
        texts=texts,
        labels=np.array([i % 2 for i in range(N_POOL)]),
        weak_probs=np.linspace(0.05, 0.95, N_POOL).astype(np.float32),
    )
    # Distinct distances from 0.5, scattered over the indices.
    distance = np.random.default_rng(7).permutation(N_POOL) / (2 * N_POOL)
    probs = {t: 0.5 + (d if i % 2 else -d) for i, (t, d) in enumerate(zip(texts, distance))}
    return split, probs


class FakePredictor:
    def __init__(self, probs: dict[str, float]):
        self.probs = probs
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.array([self.probs[t] for t in texts], dtype=np.float32)


def make_ctx(pool: Split, seed: int = 0, **params) -> TrialContext:
    spec = TrialSpec(task="t", method=Method.uncertainty_sft, n_weak=10, n_gold=6, params=MethodParams(**params))
    rng = np.random.default_rng(seed)
    return TrialContext(
        spec=spec, plan=plan_labels(spec), model=None, runtime=None, draw=trial_draw(pool, seed, rng), test=pool, rng=rng
    )


def most_unsure_ids(probs: dict[str, float], pool: Split, among: np.ndarray, n: int) -> set[str]:
    ranked = sorted(among.tolist(), key=lambda i: abs(probs[pool.texts[i]] - 0.5))
    return {pool.ids[i] for i in ranked[:n]}


def test_buys_the_untaken_examples_the_model_is_least_sure_of():
    pool, probs = make_pool()
    ctx = make_ctx(pool)
    weak = ctx.draw.take_weak(10)  # the weak stage bought these first
    untaken_before = ctx.draw.untaken()
    assert len(untaken_before) == N_POOL - 10
    predict = FakePredictor(probs)

    gold = _buy_uncertain_gold(ctx, predict, 6)

    assert len(gold) == 6
    assert set(gold.ids) == most_unsure_ids(probs, pool, untaken_before, 6)
    assert not set(gold.ids) & set(weak.ids)
    # The model scored exactly the untaken examples, once.
    assert len(predict.calls) == 1
    assert sorted(predict.calls[0]) == sorted(pool.texts[i] for i in untaken_before)
    # Gold labels come with the examples.
    index = {pool.ids[i]: i for i in range(N_POOL)}
    assert [pool.labels[index[i]] for i in gold.ids] == gold.labels.tolist()


def test_bought_examples_are_marked_taken():
    pool, probs = make_pool()
    ctx = make_ctx(pool)
    ctx.draw.take_weak(10)
    gold = _buy_uncertain_gold(ctx, FakePredictor(probs), 6)
    index = {pool.ids[i]: i for i in range(N_POOL)}
    taken = {index[i] for i in gold.ids}
    assert not taken & set(ctx.draw.untaken().tolist())
    assert len(ctx.draw.untaken()) == N_POOL - 16
    # A second purchase picks the next most uncertain, never the same example twice.
    again = _buy_uncertain_gold(ctx, FakePredictor(probs), 6)
    assert not set(again.ids) & set(gold.ids)
    # and later random draws skip them too
    rest = ctx.draw.take_weak(len(ctx.draw.untaken()))
    assert not set(rest.ids) & (set(gold.ids) | set(again.ids))


def test_the_most_uncertain_example_is_not_bought_when_already_taken():
    pool, probs = make_pool()
    ctx = make_ctx(pool)
    most_unsure = min(range(N_POOL), key=lambda i: abs(probs[pool.texts[i]] - 0.5))
    ctx.draw.take_indices(np.array([most_unsure]))
    gold = _buy_uncertain_gold(ctx, FakePredictor(probs), 5)
    assert pool.ids[most_unsure] not in gold.ids
    expected = most_unsure_ids(probs, pool, np.array([i for i in range(N_POOL) if i != most_unsure]), 5)
    assert set(gold.ids) == expected


def test_respects_uncertainty_candidates():
    pool, probs = make_pool()
    ctx = make_ctx(pool, uncertainty_candidates=12)
    ctx.draw.take_weak(10)
    untaken = set(ctx.draw.untaken().tolist())
    predict = FakePredictor(probs)
    gold = _buy_uncertain_gold(ctx, predict, 4)
    scored = predict.calls[0]
    assert len(scored) == 12 and len(set(scored)) == 12
    by_text = {t: i for i, t in enumerate(pool.texts)}
    candidates = np.array([by_text[t] for t in scored])
    assert set(candidates.tolist()) <= untaken
    assert set(gold.ids) == most_unsure_ids(probs, pool, candidates, 4)


def test_candidates_larger_than_the_pool_scores_everything_left():
    pool, probs = make_pool()
    ctx = make_ctx(pool, uncertainty_candidates=10_000)
    ctx.draw.take_weak(10)
    predict = FakePredictor(probs)
    _buy_uncertain_gold(ctx, predict, 4)
    assert len(predict.calls[0]) == N_POOL - 10


def test_too_few_candidates_is_an_error():
    pool, probs = make_pool()
    ctx = make_ctx(pool, uncertainty_candidates=3)
    with pytest.raises(ValueError, match="only 3"):
        _buy_uncertain_gold(ctx, FakePredictor(probs), 4)


def test_same_seed_same_purchase():
    pool, probs = make_pool()
    picks = []
    for _ in range(2):
        ctx = make_ctx(pool, seed=3, uncertainty_candidates=15)
        ctx.draw.take_weak(10)
        picks.append(_buy_uncertain_gold(ctx, FakePredictor(probs), 5).ids)
    assert picks[0] == picks[1]
