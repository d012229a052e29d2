"""GET /frontier/{task}: the paper's frontier over stored trials, for any cost assumption.

The trials are written straight into the database (no training). Two cost assumptions are read
over the same rows, and the rows are built so the frontier differs between them:

  point   method            model          n_weak n_gold  test acc (mean over seeds)  selection  holdout
  I       icl               smollm2-135m        2      2  0.60                          0.61       0.59
  P1      seq_sft           minilm-l6         100      0  0.70   (0.68, 0.72)           0.70       0.70
  P2      seq_sft           minilm-l6           0     20  0.75   (0.74, 0.76)           0.74       0.76
  P6      seq_sft           minilm-l6           0     21  0.7515 (only +0.0015 on P2)   0.745      0.75
  P3      seq_sft           minilm-l6         200     10  0.80   (0.79, 0.80, 0.81)     0.79       0.81
  P4      logconf_sft       minilm-l6         302      0  0.78   (0.77, 0.79)           0.85       0.77
  P5      uncertainty_sft   minilm-l6          50     30  0.801  (0.80, 0.802)          0.80       0.80
  P7      logconf_sft       minilm-l6         350      0  0.8035 (0.7935, 0.8135)       0.86       0.79

Cost at weak 0.1 / gold 1:  I 2.2, P1 10, P2 20, P6 21, P3 30, P4 30.2, P5 35, P7 35
Cost at weak 0.5 / gold 1:  I 3, P2 20, P6 21, P1 50, P5 55, P3 110, P4 151, P7 175
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.stats.prices import Prices
from worker.engine.spec import TrialSpec

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

MINILM, SMOLLM = "minilm-l6", "smollm2-135m"

# name -> (method, model, n_weak, n_gold, [(seed, test, selection, holdout), ...])
POINTS: dict[str, tuple[str, str, int, int, list[tuple[int, float, float, float]]]] = {
    "I": ("icl", SMOLLM, 2, 2, [(0, 0.60, 0.61, 0.59)]),
    "P1": ("seq_sft", MINILM, 100, 0, [(0, 0.68, 0.70, 0.69), (1, 0.72, 0.70, 0.71)]),
    "P2": ("seq_sft", MINILM, 0, 20, [(0, 0.74, 0.74, 0.76), (1, 0.76, 0.74, 0.76)]),
    "P6": ("seq_sft", MINILM, 0, 21, [(0, 0.7515, 0.745, 0.75)]),
    "P3": ("seq_sft", MINILM, 200, 10, [(0, 0.79, 0.79, 0.80), (1, 0.80, 0.79, 0.81), (2, 0.81, 0.79, 0.82)]),
    "P4": ("logconf_sft", MINILM, 302, 0, [(0, 0.77, 0.85, 0.77), (1, 0.79, 0.85, 0.77)]),
    "P5": ("uncertainty_sft", MINILM, 50, 30, [(0, 0.80, 0.80, 0.79), (1, 0.802, 0.80, 0.81)]),
    "P7": ("logconf_sft", MINILM, 350, 0, [(0, 0.7935, 0.86, 0.78), (1, 0.8135, 0.86, 0.80)]),
}
MEAN_TEST = {"I": 0.60, "P1": 0.70, "P2": 0.75, "P6": 0.7515, "P3": 0.80, "P4": 0.78, "P5": 0.801, "P7": 0.8035}
HOLDOUT = {"I": 0.59, "P1": 0.70, "P2": 0.76, "P6": 0.75, "P3": 0.81, "P4": 0.77, "P5": 0.80, "P7": 0.79}
SELECTION = {"I": 0.61, "P1": 0.70, "P2": 0.74, "P6": 0.745, "P3": 0.79, "P4": 0.85, "P5": 0.80, "P7": 0.86}

CHEAP_WEAK = {"weak_cost": 0.1, "gold_cost": 1}
CURRENT_VERSION = TrialSpec(task="cities").task_version
DEAR_WEAK = {"weak_cost": 0.5, "gold_cost": 1}


def _spec(method: str, model: str, n_weak: int, n_gold: int, seed: int) -> dict:
    spec = TrialSpec(task="cities", model=model, method=method, n_weak=n_weak, n_gold=n_gold, seed=seed)
    return {**spec.model_dump(mode="json"), "params": {}}


def insert_trials(task_id: int) -> dict[str, list[int]]:
    """Store the table above (plus trials that must be ignored); returns each point's trial ids."""
    from app.db.models import Trial
    from app.db.session import session_scope

    ids: dict[str, list[int]] = {}
    keys = (f"frontier-test-{i:04d}" for i in itertools.count())
    with session_scope() as session:
        for name, (method, model, n_weak, n_gold, seeds) in POINTS.items():
            rows = [
                Trial(
                    key=next(keys), task_id=task_id, model=model, method=method, n_weak=n_weak, n_gold=n_gold,
                    seed=seed, weak_labeler="default", spec=_spec(method, model, n_weak, n_gold, seed),
                    recipe="fast", task_version=CURRENT_VERSION, status="done", attempts=1, test_accuracy=test, selection_accuracy=selection,
                    holdout_accuracy=holdout, test_auroc=0.5, wall_s=1.0,
                    result={"test_accuracy": test},
                )
                for seed, test, selection, holdout in seeds
            ]
            session.add_all(rows)
            session.flush()
            ids[name] = [r.id for r in rows]
        # Not done: never part of a frontier, however good they would look.
        for status, n_weak in (("queued", 400), ("running", 450), ("failed", 500)):
            session.add(
                Trial(
                    key=next(keys), task_id=task_id, model=MINILM, method="seq_sft", n_weak=n_weak, n_gold=0,
                    seed=0, weak_labeler="default", spec=_spec("seq_sft", MINILM, n_weak, 0, 0), status=status,
                    recipe="fast", task_version=CURRENT_VERSION,
                    attempts=1, test_accuracy=0.99 if status == "failed" else None,
                    selection_accuracy=0.99 if status == "failed" else None,
                    holdout_accuracy=0.99 if status == "failed" else None,
                )
            )
        # Done, and better than anything above, but trained on an older build of the task.
        session.add(
            Trial(
                key=next(keys), task_id=task_id, model=MINILM, method="seq_sft", n_weak=0, n_gold=20, seed=0,
                weak_labeler="default", spec=_spec("seq_sft", MINILM, 0, 20, 0), recipe=None, task_version=1,
                status="done", attempts=1, test_accuracy=0.99, selection_accuracy=0.99, holdout_accuracy=0.99,
                test_auroc=0.99, wall_s=1.0, result={"test_accuracy": 0.99},
            )
        )
    return ids


@pytest.fixture
def cities(api):
    """The built-in task (registered through the API on first use) with the trials above stored."""
    from sqlalchemy import select

    from app.db.models import Task
    from app.db.session import session_scope

    response = api.post("/tasks", data={"dataset": "cities"})  # a read registers nothing
    assert response.status_code == 201, response.text
    assert response.json()["source"] == "builtin"
    with session_scope() as session:
        task_id = session.scalars(select(Task.id).where(Task.name == "cities")).one()
    return api, insert_trials(task_id)


def names(points: list[dict]) -> list[str]:
    """Map returned points back to the table's names by their label counts and method."""
    by_counts = {(m, w, g): name for name, (m, _, w, g, _) in POINTS.items()}
    return [by_counts[(p["method"], p["n_weak"], p["n_gold"])] for p in points]


def check_point(point: dict, name: str, trial_ids: dict[str, list[int]], weak_cost: float, gold_cost: float) -> None:
    method, model, n_weak, n_gold, seeds = POINTS[name]
    assert (point["method"], point["model"], point["n_weak"], point["n_gold"]) == (method, model, n_weak, n_gold)
    assert point["cost"] == pytest.approx(n_weak * weak_cost + n_gold * gold_cost)
    assert point["spend_weak"] == pytest.approx(n_weak * weak_cost)
    assert point["spend_gold"] == pytest.approx(n_gold * gold_cost)
    assert point["accuracy"] == pytest.approx(MEAN_TEST[name], abs=1e-4)  # seeds averaged
    assert point["selection_accuracy"] == pytest.approx(SELECTION[name], abs=1e-4)
    assert point["holdout_accuracy"] == pytest.approx(HOLDOUT[name], abs=1e-4)
    assert sorted(point["seeds"]) == [s[0] for s in seeds]
    assert sorted(point["trial_ids"]) == sorted(trial_ids[name])


# name lists per cost assumption: overall frontier, per-method frontiers, all points by cost
EXPECTED = {
    "cheap-weak": (
        CHEAP_WEAK,
        ["I", "P1", "P2", "P3", "P7"],
        {"icl": ["I"], "seq_sft": ["P1", "P2", "P3"], "logconf_sft": ["P4", "P7"], "uncertainty_sft": ["P5"]},
    ),
    "dear-weak": (
        DEAR_WEAK,
        ["I", "P2", "P5", "P7"],
        {"icl": ["I"], "seq_sft": ["P2", "P3"], "logconf_sft": ["P4", "P7"], "uncertainty_sft": ["P5"]},
    ),
}


@pytest.mark.parametrize("assumption", EXPECTED)
def test_frontier_at_each_cost_assumption(cities, assumption):
    api, trial_ids = cities
    costs, overall, per_method = EXPECTED[assumption]
    response = api.get("/frontier/cities", params=costs)
    assert response.status_code == 200, response.text
    body = response.json()

    assert body["task"] == "cities" and body["model"] is None
    assert (body["weak_cost"], body["gold_cost"]) == (costs["weak_cost"], costs["gold_cost"])
    # Every done point once, seeds pooled, cheapest first; queued/running/failed trials and trials of
    # an older build of the task nowhere.
    assert sorted(names(body["points"])) == sorted(POINTS)
    point_costs = [p["cost"] for p in body["points"]]
    assert point_costs == sorted(point_costs)
    for point in body["points"]:
        check_point(point, names([point])[0], trial_ids, **costs)

    assert names(body["overall"]) == overall
    for point, name in zip(body["overall"], overall):
        check_point(point, name, trial_ids, **costs)
    assert {m: names(ps) for m, ps in body["per_method"].items()} == per_method


def test_the_frontier_moves_with_the_cost_assumption(cities):
    api, _ = cities
    cheap = api.get("/frontier/cities", params=CHEAP_WEAK).json()
    dear = api.get("/frontier/cities", params=DEAR_WEAK).json()
    # Cheap weak labels put the weak-heavy seq_sft points on the frontier; dear ones, uncertainty_sft.
    assert {"P1", "P3"} <= set(names(cheap["overall"])) and "P5" not in names(cheap["overall"])
    assert "P5" in names(dear["overall"]) and not {"P1", "P3"} & set(names(dear["overall"]))


@pytest.mark.parametrize(
    ("costs", "expected"),
    [
        # weak 0.1: P4 (302 * 0.1 = 30.200000000000003) fits 30.2, but P3 beats it on the whole test set.
        (CHEAP_WEAK, [(1, None), (25, "P6"), (30.2, "P3"), (40, "P7")]),
        (DEAR_WEAK, [(1, None), (25, "P6"), (60, "P5"), (200, "P7")]),
    ],
    ids=["cheap-weak", "dear-weak"],
)
def test_best_at_budget_is_chosen_on_the_whole_test_set(cities, costs, expected):
    api, trial_ids = cities
    budgets = [b for b, _ in expected]
    response = api.get("/frontier/cities", params={**costs, "budgets": budgets})
    assert response.status_code == 200, response.text
    rows = response.json()["best_at_budget"]
    assert [r["budget"] for r in rows] == budgets
    for row, (budget, name) in zip(rows, expected):
        if name is None:
            assert row["best"] is None, f"nothing costs {budget} or less"
            continue
        best = row["best"]
        assert names([best]) == [name], f"budget {budget}"
        assert best["cost"] <= budget + 1e-9
        # Chosen on test accuracy: P4 would win $30.2 on its selection half (0.85), P3 wins on all (0.80).
        assert best["accuracy"] == pytest.approx(MEAN_TEST[name], abs=1e-4)
        check_point(best, name, trial_ids, **costs)


def test_best_at_budget_defaults_to_the_paper_budgets_in_gold_units(cities):
    api, _ = cities
    body = api.get("/frontier/cities", params={"weak_cost": 0.5, "gold_cost": 2}).json()
    assert [r["budget"] for r in body["best_at_budget"]] == [10, 34, 130, 514, 2050, 8194]
    # At 2 per gold label: I costs 1 + 4 = 5 and P1 50; a budget of 10 buys only I.
    assert names([body["best_at_budget"][0]["best"]]) == ["I"]


def test_model_filter(cities):
    api, _ = cities
    minilm = api.get("/frontier/cities", params={**CHEAP_WEAK, "model": MINILM})
    assert minilm.status_code == 200, minilm.text
    body = minilm.json()
    assert body["model"] == MINILM
    assert sorted(names(body["points"])) == sorted(set(POINTS) - {"I"})
    assert {p["model"] for p in body["points"]} == {MINILM}
    assert names(body["overall"]) == ["P1", "P2", "P3", "P7"]
    assert set(body["per_method"]) == {"seq_sft", "logconf_sft", "uncertainty_sft"}

    smollm = api.get("/frontier/cities", params={**CHEAP_WEAK, "model": SMOLLM}).json()
    assert names(smollm["points"]) == names(smollm["overall"]) == ["I"]
    assert smollm["per_method"] == {"icl": smollm["overall"]}

    # A known model with nothing stored yet: an honest empty answer.
    nothing = api.get("/frontier/cities", params={**CHEAP_WEAK, "model": "minilm-l3"})
    assert nothing.status_code == 200
    assert nothing.json()["points"] == nothing.json()["overall"] == []
    assert all(r["best"] is None for r in nothing.json()["best_at_budget"])

    # A name that is no model at all is a typo, not "nothing measured": refused, naming the known ones,
    # by every read that filters by model.
    for path, extra in [("/frontier/cities", {}), ("/frontier/cities/marginal", {"budget": 20}),
                        ("/plan/cities", {"target_accuracy": 0.8})]:
        typo = api.get(path, params={**CHEAP_WEAK, **extra, "model": "minilm-l7"})
        assert typo.status_code == 422, (path, typo.text)
        [detail] = typo.json()["detail"]
        assert detail["loc"] == ["query", "model"] and "unknown model 'minilm-l7'" in detail["msg"], detail
        assert "minilm-l6" in detail["msg"]


def test_unknown_task_is_404(api):
    response = api.get("/frontier/no-such-task", params=CHEAP_WEAK)
    assert response.status_code == 404
    assert "no-such-task" in response.json()["detail"]


@pytest.mark.parametrize("bad", [0, -0.5])
@pytest.mark.parametrize("field", ["weak_cost", "gold_cost"])
def test_costs_must_be_positive(api, field, bad):
    response = api.get("/frontier/cities", params={**CHEAP_WEAK, field: bad})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["loc"][-1] == field for d in detail), detail


def test_missing_cost_is_422(api):
    response = api.get("/frontier/cities", params={"weak_cost": 0.1})
    assert response.status_code == 422
    assert any(d["loc"][-1] == "gold_cost" for d in response.json()["detail"])


def test_budgets_must_be_positive(api):
    assert api.post("/tasks", data={"dataset": "cities"}).status_code == 201
    response = api.get("/frontier/cities", params={**CHEAP_WEAK, "budgets": [10, 0]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "budgets"


def _pareto_by_rule(points, weak_cost, gold_cost):
    """The paper's rule as first written, point by point: the reference for the array version."""
    from app.results.frontier import MIN_GAIN

    frontier = []
    for p in sorted(points, key=lambda p: (p.cost(Prices(weak_cost, gold_cost)), -p.accuracy)):
        if not frontier or p.accuracy > frontier[-1].accuracy + MIN_GAIN:
            frontier.append(p)
    return frontier


def _best_by_rule(points, budget, weak_cost, gold_cost):
    affordable = [p for p in points if p.cost(Prices(weak_cost, gold_cost)) <= budget + 1e-9]
    return max(affordable, key=lambda p: (p.accuracy, -p.cost(Prices(weak_cost, gold_cost))), default=None)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from([0, 10, 20, 30]), st.sampled_from([0, 1, 2, 5]),
                            st.sampled_from([0.5, 0.6, 0.601, 0.603, 0.7])), max_size=25),
    weak_cost=st.sampled_from([0.1, 0.5, 1.0]), budget=st.sampled_from([0, 1, 3, 7.5, 50]),
)
def test_the_array_frontier_follows_the_rule_point_by_point(rows, weak_cost, budget):
    # Ties in cost and accuracy are common here: the first stored of equals must win, as before.
    from app.results.frontier import PricedPoints
    from app.results.points import PointStats

    points = [PointStats("seq_sft", w, g, MINILM, test=[a]) for w, g, a in rows]
    priced = PricedPoints.of(points, weak_cost, 1.0)
    assert [id(p) for p in priced.pareto()] == [id(p) for p in _pareto_by_rule(points, weak_cost, 1.0)]
    assert priced.best_within(budget) is _best_by_rule(points, budget, weak_cost, 1.0)
