"""The learning surface through the API: the predicted frontier and GET /plan against held-out grid
points, and recipes kept apart everywhere a frontier is read.

The trials are written straight into the database: a measured word_sentiment grid, kept fixed in
tests/data/study-word_sentiment-engine1.json (the study of engine version 1, 20 points x 3 seeds;
docs/studies holds the current engine's, whose seeds vary more below $256; per-seed accuracies spread as
mean - sd, mean, mean + sd), stored under the built-in task `cities` (only numbers matter here).
The $256 row is held out of the database and used as the truth the predictions are checked on.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from worker.engine.spec import Recipe, TrialSpec, recipe_params

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

STUDY = json.loads((Path(__file__).resolve().parents[2] / "tests/data/study-word_sentiment-engine1.json").read_text())
HELD_OUT = 256.0
PRICES = {"weak_cost": 0.1, "gold_cost": 1.0}
N_TEST = 1000
Z90 = 1.645


def _trial(task_id: int, key: str, point: dict, seed: int, accuracy: float, recipe: str, params: dict | None = None):
    from app.db.models import Trial

    spec = TrialSpec(task="cities", method="seq_sft", n_weak=point["n_weak"], n_gold=point["n_gold"], seed=seed,
                     recipe=recipe, params=recipe_params(recipe, params).model_dump())
    return Trial(
        key=key, task_id=task_id, model="minilm-l6", method="seq_sft", n_weak=point["n_weak"], n_gold=point["n_gold"],
        seed=seed, weak_labeler="default", spec=spec.model_dump(mode="json"), recipe=recipe,
        task_version=spec.task_version, status="done", attempts=1, test_accuracy=accuracy,
        selection_accuracy=accuracy, holdout_accuracy=accuracy, test_auroc=0.5, wall_s=1.0,
        result={"test_accuracy": accuracy, "n_test": N_TEST},
    )


@pytest.fixture
def grid(api):
    """The study's points except the held-out row as `fast` trials, plus a few `paper` ones and overrides."""
    from sqlalchemy import select

    from app.db.models import Task
    from app.db.session import session_scope

    assert api.post("/tasks", data={"dataset": "cities"}).status_code == 201  # a read registers nothing
    keys = (f"plan-test-{i:04d}" for i in itertools.count())
    with session_scope() as session:
        task_id = session.scalars(select(Task.id).where(Task.name == "cities")).one()
        for point in STUDY["points"]:
            if point["budget"] == HELD_OUT:
                continue
            m, sd = point["accuracy"], point["accuracy_sd"]
            for seed, acc in enumerate((m - sd, m, m + sd)):
                session.add(_trial(task_id, next(keys), point, seed, acc, "fast"))
        # A paper-recipe point that would top every budget it affords if recipes were mixed.
        for seed in range(2):
            session.add(_trial(task_id, next(keys), {"n_weak": 0, "n_gold": 16}, seed, 0.99, "paper"))
        # fast with an override: a recipe of its own.
        session.add(_trial(task_id, next(keys), {"n_weak": 0, "n_gold": 16}, 0, 0.98, "fast", {"max_steps_per_stage": 6}))
    return api


def _held_out() -> list[dict]:
    return [p for p in STUDY["points"] if p["budget"] == HELD_OUT]


def _noise(point: dict) -> float:
    """The measured point's own standard error: seeds and test examples."""
    acc = point["accuracy"]
    return math.sqrt(point["accuracy_sd"] ** 2 / 3 + acc * (1 - acc) / N_TEST)


def test_predicted_frontier_matches_the_held_out_budget(grid):
    body = grid.get("/frontier/cities", params={**PRICES, "budgets": [HELD_OUT], "predict": True}).json()
    assert body["recipe"] == "fast"  # the recipe with the most trials
    (predicted,) = body["predicted"]
    assert predicted["predicted"] and predicted["in_support"] and predicted["cost"] <= HELD_OUT + 1e-9
    measured_best = max(_held_out(), key=lambda p: p["accuracy"])
    # The prediction and the best measured allocation at $256 agree within their combined noise.
    sd_pred = (predicted["high"] - predicted["low"]) / (2 * Z90)
    assert abs(predicted["accuracy"] - measured_best["accuracy"]) <= Z90 * math.hypot(sd_pred, _noise(measured_best))
    (surface,) = body["surfaces"]
    assert surface["n_points"] == 15 and surface["loo"]["rmse"] < 0.06
    # The measured points carry their intervals; the frontier holds no trial of another recipe.
    assert all(p["recipe"] == "fast" and p["interval"]["level"] == 0.9 for p in body["points"])
    assert max(p["accuracy"] for p in body["points"]) < 0.95


def test_plan_reaches_a_target_the_held_out_row_shows_reachable(grid):
    target = 0.85  # the held-out $256 row reaches 0.90 with a mix
    body = grid.get("/plan/cities", params={**PRICES, "target_accuracy": target, "max_budget": 1024}).json()
    assert body["method"] == "seq_sft" and body["in_support"]
    assert body["accuracy"] >= target and 0.8 <= body["probability"] < 1 and body["confidence"] == 0.8
    assert body["cost"] <= HELD_OUT  # the held-out measurements reach 0.85 at $256 already
    assert body["n_weak"] > 0 and body["n_gold"] > 0  # the measured mixes beat both corners from $64 up
    assert body["warnings"] == []
    # Asking for less certainty buys a cheaper answer; asking for more, a dearer one.
    even = grid.get("/plan/cities", params={**PRICES, "target_accuracy": target, "confidence": 0.5}).json()
    sure = grid.get("/plan/cities", params={**PRICES, "target_accuracy": target, "confidence": 0.95}).json()
    assert 0.5 <= even["probability"] and even["cost"] <= body["cost"] <= sure["cost"] and sure["probability"] >= 0.95

    beyond = grid.get("/plan/cities", params={**PRICES, "target_accuracy": 0.97}).json()
    assert beyond["method"] is None and beyond["probability"] is None
    assert beyond["reason"].startswith("the evidence does not reach that far")
    assert [w["code"] for w in beyond["warnings"]] == ["outside_evidence"]


def test_recipes_are_kept_apart(grid):
    body = grid.get("/frontier/cities", params=PRICES).json()
    assert [r["recipe"] for r in body["recipes"]] == ["fast", "paper", "fast max_steps_per_stage=6"]
    assert [r["n_trials"] for r in body["recipes"]] == [45, 2, 1]

    paper = grid.get("/frontier/cities", params={**PRICES, "recipe": "paper"}).json()
    assert paper["recipe"] == "paper" and [(p["n_gold"], p["accuracy"]) for p in paper["points"]] == [(16, 0.99)]
    override = grid.get("/frontier/cities", params={**PRICES, "recipe": "fast max_steps_per_stage=6"}).json()
    assert [p["accuracy"] for p in override["points"]] == [0.98]

    missing = grid.get("/frontier/cities", params={**PRICES, "recipe": "slow"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"][-1] == "recipe" and "'fast'" in missing.json()["detail"][0]["msg"]

    marginal = grid.get("/frontier/cities/marginal", params={**PRICES, "budget": 64}).json()
    assert marginal["recipe"] == "fast" and marginal["base"]["recipe"] == "fast"
    assert marginal["from_surface"]["better"] in ("weak", "gold", "cannot tell")
    plan = grid.get("/plan/cities", params={**PRICES, "target_accuracy": 0.6, "recipe": "paper"})
    assert plan.status_code == 422 and "needs at least 4" in plan.text


def test_one_recipe_trained_with_nothing_overridden_has_no_suffix():
    from app.db.models import Trial
    from rowwise_reads import recipe_label

    spec = TrialSpec(task="cities", recipe=Recipe.paper, params=recipe_params(Recipe.paper).model_dump())
    assert recipe_label(Trial(recipe="paper", spec=spec.model_dump(mode="json"))) == "paper"
