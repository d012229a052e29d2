"""An allocation's stop rule (app.allocations.verdict): confident when the untried shares are
unlikely to beat the best measured point by more than a point, not while a rise is left unexplored;
an allocation asked to stop when confident asks no more points."""

from __future__ import annotations

import itertools

import pytest

from app.allocations import lifecycle as allocations
from app.allocations import verdict as search_verdict
from app.allocations.search import SearchSpace
from app.db.models import Allocation, StudyPoint, Task, Trial
from worker.engine.spec import Method, recipe_params

_ids = itertools.count(1)
SPACE = SearchSpace(methods=(Method.seq_sft,), budget=100.0, weak_cost=0.1, gold_cost=1.0, pool_size=10_000,
                    model="minilm-l6", params=recipe_params("fast"))


def point(share: float, accuracies: list[float]) -> StudyPoint:
    counts = SPACE.point_for(Method.seq_sft, share)
    trials = [Trial(id=next(_ids), status="done", test_accuracy=a) for a in accuracies]
    return StudyPoint(method="seq_sft", n_weak=counts.n_weak, n_gold=counts.n_gold, trials=trials)


def test_a_flat_curve_is_confident():
    points = [point(s, [0.700 + 0.002 * k, 0.700 - 0.002 * k]) for k, s in enumerate((0.0, 1.0, 0.5, 0.25, 0.75))]
    found = search_verdict.verdict(SPACE, points)
    assert found["confident"] and found["chance_any_beats"] < 0.05
    assert found["likeliest_better"]["probability"] <= found["chance_any_beats"]
    assert "unlikely to change the answer" in found["says"]


def test_an_unexplored_rise_is_not_confident_and_says_where():
    points = [point(0.0, [0.50, 0.51]), point(1.0, [0.60, 0.61]), point(0.5, [0.80, 0.79])]
    found = search_verdict.verdict(SPACE, points)
    assert not found["confident"] and found["chance_any_beats"] >= 0.05
    assert 0.1 < found["likeliest_better"]["weak_share"] < 0.95
    assert "more points could change the answer" in found["says"]


def test_the_margin_is_one_trials_scatter_between_seeds_where_that_is_more_than_a_point():
    """A gain smaller than the seeds' own scatter is one the allocation's trials could not show."""
    shares = (0.0, 1.0, 0.25, 0.5, 0.75)
    noisy = search_verdict.verdict(SPACE, [point(s, [0.70 + 0.02, 0.70 - 0.02]) for s in shares])
    assert noisy["margin"] == pytest.approx(0.04 / 2 ** 0.5, abs=1e-4)  # each pair's standard deviation
    assert f"more than {noisy['margin']:.3f}" in noisy["says"]
    quiet = search_verdict.verdict(SPACE, [point(s, [0.701, 0.699]) for s in shares])
    assert quiet["margin"] == 0.01
    one_seed = search_verdict.verdict(SPACE, [point(s, [0.70]) for s in shares])
    assert one_seed["margin"] == 0.01  # no scatter to read: a point


def test_fewer_than_two_measured_points_say_nothing():
    assert search_verdict.verdict(SPACE, [point(0.0, [0.5])]) is None


def _allocation(points: list[StudyPoint], stop: bool) -> Allocation:
    task = Task(name="t", source="builtin", n_pool=10_000, n_test=200, pool_positive_rate=0.5, test_positive_rate=0.5)
    request = {"budget": 100.0, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"], "model": "minilm-l6",
               "recipe": "fast", "params": {}, "seeds": [0, 1], "stop_when_confident": stop}
    allocation = Allocation(id="a", request=request, status="running", task=task, points_total=8)
    allocation.points.extend(points)
    return allocation


def test_an_allocation_stops_asking_only_when_asked_to_and_confident_after_its_opening_and_two_more():
    flat = [point(s, [0.70, 0.70]) for s in (0.0, 1.0, 0.5, 0.25, 0.75)]
    assert allocations._confident(_allocation(flat, stop=True), SPACE)
    assert not allocations._confident(_allocation(flat, stop=False), SPACE)
    assert not allocations._confident(_allocation(flat[:4], stop=True), SPACE)  # one search point after the opening
    rising = [point(0.0, [0.50, 0.51]), point(1.0, [0.60, 0.61]), point(0.5, [0.80, 0.79])]
    assert not allocations._confident(_allocation(rising, stop=True), SPACE)


def test_an_embedded_allocation_reports_its_search_and_stops_only_when_confident(tmp_path, configure, migrate):
    from test_sweeps import TINY, embedded_allocation

    request = {"task": "cities", "budget": 12, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
               "max_trials": 6, "seeds": [0], "params": TINY, "weak_labeler": "bow", "stop_when_confident": True}
    done = embedded_allocation(tmp_path, configure, migrate, request)
    assert done["status"] == "done", done
    search = done["recommendation"]["search"]
    assert search["points_cap"] == 6 and search["points_asked"] == done["progress"]["points_asked"]
    assert search["trials_used"] == done["progress"]["trials_done"] + done["progress"]["trials_failed"]
    assert search["stop_rule"] is not None and set(search["stop_rule"]) >= {"confident", "likeliest_better", "says"}
    # It stopped early exactly when its rule was confident with points to spare.
    assert search["stopped_early"] == (search["stop_rule"]["confident"] and search["points_asked"] < 6)
    assert search["points_asked"] >= 5  # its opening (all gold, all weak, a quarter weak), then two of the surface's
