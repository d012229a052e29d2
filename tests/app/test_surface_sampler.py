"""The allocations' sampler (app.allocations.sampler) in a real in-memory Optuna study, on a
toy accuracy whose best allocation is known."""

from __future__ import annotations

import optuna
import pytest

from app.allocations.sampler import SurfaceSampler, opening_params
from app.allocations.search import SearchSpace
from worker.engine.spec import Method, recipe_params

METHODS = (Method.seq_sft, Method.logconf_sft)


def space(methods=METHODS, budget=64.0) -> SearchSpace:
    return SearchSpace(methods=methods, budget=budget, weak_cost=0.1, gold_cost=1.0, pool_size=20_000,
                       model="minilm-l6", params=recipe_params("fast"))


def peaked(method: str, share: float) -> float:
    """Best at 0.35 weak with seq_sft; logconf_sft a point lower everywhere."""
    return 0.80 - 0.5 * (share - 0.35) ** 2 - (0.01 if method == "logconf_sft" else 0.0)


def run(search_space: SearchSpace, asks: int, seed: int = 0) -> list[tuple[str, float]]:
    study = optuna.create_study(direction="maximize", sampler=SurfaceSampler(search_space, seed))
    for params in opening_params(search_space, asks):
        study.enqueue_trial(params)
    asked = []
    for _ in range(asks):
        trial = study.ask()
        point = search_space.suggest(trial)
        assert point is not None
        method, share = trial.params["method"], trial.params["weak_share"]
        asked.append((method, share))
        study.tell(trial, peaked(method, share))
    return asked


def test_the_opening_is_the_corners_and_a_quarter_weak_of_the_first_method_then_a_quarter_of_the_others():
    four = space(methods=(Method.seq_sft, Method.prompted_sft, Method.uncertainty_sft, Method.logconf_sft))
    params = opening_params(four, 8)
    assert [(p["method"], p["weak_share"]) for p in params][:3] == [("seq_sft", 0.0), ("seq_sft", 1.0),
                                                                    ("seq_sft", 0.25)]
    assert [(p["method"], p["weak_share"]) for p in params[3:]] == [
        ("prompted_sft", 0.25), ("uncertainty_sft", 0.25), ("logconf_sft", 0.25)]
    assert len(params) == 6  # a default max_trials of 8 leaves the surface two points to ask
    assert len(opening_params(four, 4)) == 4


def test_after_the_opening_it_asks_untried_points_and_finds_the_peak():
    asked = run(space(), asks=9)
    opening = [(p["method"], p["weak_share"]) for p in opening_params(space(), 9)]
    assert asked[:len(opening)] == opening
    labels = [space().point_for(Method(m), s) for m, s in asked]
    assert len(set(labels)) == len(labels), "no point is asked twice while untried ones are left"
    best = max(asked, key=lambda a: peaked(*a))
    assert best[0] == "seq_sft" and abs(best[1] - 0.35) <= 0.1


def test_the_same_study_seed_asks_the_same_points():
    assert run(space(), asks=7, seed=3) == run(space(), asks=7, seed=3)


def test_a_point_still_training_is_not_asked_again():
    search_space = space()
    study = optuna.create_study(direction="maximize", sampler=SurfaceSampler(search_space, 0))
    for params in opening_params(search_space, 10):
        study.enqueue_trial(params)
    for _ in range(len(opening_params(search_space, 10))):
        trial = study.ask()
        search_space.suggest(trial)
        study.tell(trial, peaked(trial.params["method"], trial.params["weak_share"]))
    running = study.ask()
    search_space.suggest(running)
    following = study.ask()  # asked while the previous one is still running
    search_space.suggest(following)
    first, second = (search_space.point_for(Method(t.params["method"]), t.params["weak_share"])
                     for t in (running, following))
    assert first != second


@pytest.mark.parametrize("budget", [16.0, 1024.0])
def test_every_opening_point_is_one_the_space_can_train(budget):
    search_space = space(budget=budget)
    for params in opening_params(search_space, 10):
        assert search_space.point_for(Method(params["method"]), params["weak_share"]) is not None
