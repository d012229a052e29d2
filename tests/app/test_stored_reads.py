"""Reads from per-point aggregates (one row per point, the recipe chosen by its stored label) give
exactly what reading every trial gives (whole ORM rows, each label computed from its spec, grouped
in Python), and a repeated frontier is served by ETag and cache until a trial of its task finishes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_frontier_api import CURRENT_VERSION, MINILM, SMOLLM

from worker.engine.metrics import pack_correct
from worker.engine.spec import ENGINE_VERSION, TrialSpec

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

N_TEST = 16
RECIPES = [("fast", {}), ("paper", {}), ("fast", {"max_steps_per_stage": 6})]
# A trial's result says whether it learned; "absent": stored before the engine said.
LEARNED = st.sampled_from(["absent", None, True, False])
_keys = (f"stored-read-{i:06d}" for i in itertools.count())

trial_rows = st.lists(
    st.fixed_dictionaries({
        "model": st.sampled_from([MINILM, SMOLLM]),
        "method": st.sampled_from(["seq_sft", "logconf_sft", "uncertainty_sft"]),
        "recipe": st.sampled_from(range(len(RECIPES))),
        "n_weak": st.sampled_from([0, 100, 200]),
        "n_gold": st.sampled_from([10, 20]),
        "seed": st.integers(0, 3),
        "status": st.sampled_from(["done", "done", "done", "queued", "failed"]),
        "current": st.booleans() | st.just(True),
        "correct": st.none() | st.lists(st.booleans(), min_size=N_TEST, max_size=N_TEST),
        "accuracy": st.floats(0.3, 1.0),
        "learned": LEARNED,
    }),
    min_size=0, max_size=30,
)


@pytest.fixture
def cities_task(api) -> int:
    """The built-in task's id, registered through the API; its trials are each test's to write."""
    from sqlalchemy import select

    from app.db.models import Task
    from app.db.session import session_scope

    assert api.post("/tasks", data={"dataset": "cities"}).status_code == 201
    with session_scope() as session:
        return session.scalars(select(Task.id).where(Task.name == "cities")).one()


def _spec(row: dict) -> dict:
    recipe, overrides = RECIPES[row["recipe"]]
    spec = TrialSpec(task="cities", model=row["model"], method=row["method"], n_weak=row["n_weak"],
                     n_gold=row["n_gold"], seed=row["seed"], recipe=recipe, params=overrides)
    return spec.model_dump(mode="json")


def store(task_id: int, rows: list[dict]) -> None:
    from app.db.models import Trial
    from app.db.session import session_scope

    with session_scope() as session:
        for row in rows:
            done = row["status"] == "done"
            correct = None if row["correct"] is None else np.array(row["correct"])
            accuracy = float(correct.mean()) if correct is not None else row["accuracy"]
            result = {"test_accuracy": accuracy, "n_test": N_TEST,
                      "test_correct": None if correct is None else pack_correct(correct)}
            if row.get("learned", "absent") != "absent":
                result["learned"] = row["learned"]
            session.add(Trial(
                key=next(_keys), task_id=task_id, model=row["model"], method=row["method"], n_weak=row["n_weak"],
                n_gold=row["n_gold"], seed=row["seed"], weak_labeler="default", spec=_spec(row),
                recipe=RECIPES[row["recipe"]][0], task_version=CURRENT_VERSION if row["current"] else 1,
                engine_version=ENGINE_VERSION,
                status=row["status"], attempts=1, test_accuracy=accuracy if done else None,
                selection_accuracy=accuracy if done else None, holdout_accuracy=accuracy if done else None,
                test_auroc=0.5, wall_s=1.0, result=result if done else None,
            ))


def both_reads(task_name: str, model: str | None, recipe: str | None) -> tuple[dict, dict]:
    """The frontier and the marginal estimate, computed from both paths over the same rows."""
    from app.db.models import Task
    from app.db.session import session_scope
    from app.errors import RequestError
    from app.results.frontier import frontier
    from app.results.marginal import marginal
    from rowwise_reads import current_recipe_points_rowwise

    from app.results.recipes import current_recipe_points
    from app.tasks.registry import buyable

    answers = {}
    with session_scope() as session:
        task = session.query(Task).filter_by(name=task_name).one()
        for name, read in (("rows", current_recipe_points_rowwise), ("aggregates", current_recipe_points)):
            try:
                chosen, points, recipes = read(session, task, model, recipe)
            except RequestError as exc:
                answers[name] = {"error": (exc.field, exc.message)}
                continue
            body = frontier(points, 0.1, 1.0, [5, 20, 40], predict=True, pool_size=buyable(task, "default"))
            fewer = frontier(points, 0.2, 1.0, [5, 20, 40], max_points=3)
            extra = marginal(points, 0.1, 1.0, 25)
            answers[name] = json.loads(json.dumps(
                {"recipe": chosen, "recipes": recipes, "frontier": body, "fewer": fewer, "marginal": extra}, default=str))
    return answers["rows"], answers["aggregates"]


# batch 0: every refresh rebuilds the task's points in one read, as after a migration; 500: by their keys.
@pytest.mark.parametrize("batch", [0, 500])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=trial_rows, model=st.sampled_from([None, MINILM]),
       recipe=st.sampled_from([None, "fast", "paper", "fast max_steps_per_stage=6"]))
def test_reading_aggregates_answers_exactly_as_reading_every_trial(cities_task, monkeypatch, batch, rows, model,
                                                                   recipe):
    from app.trials import aggregates as point_aggregates

    monkeypatch.setattr(point_aggregates, "BATCH", batch)
    from app.db.models import PointAggregate, Trial
    from app.db.session import session_scope

    with session_scope() as session:  # trials are deleted only with their task, which takes its aggregates
        session.query(PointAggregate).delete()
        session.query(Trial).delete()
    point_aggregates.forget_points()
    store(cities_task, rows)
    by_rows, by_aggregates = both_reads("cities", model, recipe)
    assert by_aggregates == by_rows


# Few points, many seeds each: later trials mostly land on points already kept and move their prior.
dense_rows = st.lists(
    st.fixed_dictionaries({
        "model": st.just(MINILM),
        "method": st.sampled_from(["seq_sft", "logconf_sft"]),
        "recipe": st.sampled_from([0, 1]),
        "n_weak": st.sampled_from([0, 100]),
        "n_gold": st.just(10),
        "seed": st.integers(0, 3),
        "status": st.just("done"),
        "current": st.just(True),
        "correct": st.none() | st.lists(st.booleans(), min_size=N_TEST, max_size=N_TEST),
        "accuracy": st.floats(0.3, 1.0),
        "learned": LEARNED,
    }),
    min_size=1, max_size=24,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=dense_rows, then=dense_rows, model=st.sampled_from([None, MINILM]),
       recipe=st.sampled_from([None, "fast", "paper"]))
def test_kept_points_brought_up_to_date_answer_exactly_as_reading_every_trial(cities_task, first, then, model,
                                                                             recipe):
    """A process keeps a recipe's points and, after more trials finish, reads only the rows written
    since: new points, points with new seeds, and the priors of their recipes."""
    from app.db.models import PointAggregate, Trial
    from app.db.session import session_scope
    from app.trials import aggregates as point_aggregates

    with session_scope() as session:
        session.query(PointAggregate).delete()
        session.query(Trial).delete()
    point_aggregates.forget_points()
    store(cities_task, first)
    both_reads("cities", model, recipe)  # kept now
    store(cities_task, then)
    by_rows, by_aggregates = both_reads("cities", model, recipe)
    assert by_aggregates == by_rows


def finish_a_trial(task_id: int, n_weak: int, accuracy: float) -> None:
    """A trial created, claimed and finished by the service's own functions, as a worker does."""
    from app.db.models import Task
    from app.db.session import session_scope
    from app.trials import cache as trials

    spec = TrialSpec(task="cities", model=MINILM, method="seq_sft", n_weak=n_weak, n_gold=10, seed=0, recipe="fast")
    with session_scope() as session:
        trial = trials.get_or_create_trial(session, session.get(Task, task_id), spec)
        assert trials.claim(session, trial.id, "worker-a")
        assert trials.finish(session, trial.id, "worker-a", {
            "test_accuracy": accuracy, "selection_accuracy": accuracy, "holdout_accuracy": accuracy,
            "test_auroc": 0.5, "wall_s": 1.0, "n_test": N_TEST,
        })


def test_a_repeated_frontier_costs_nothing_until_a_trial_of_its_task_finishes(api, cities_task):
    url = "/frontier/cities?weak_cost=0.1&gold_cost=1"
    finish_a_trial(cities_task, 100, 0.7)
    first = api.get(url)
    assert first.status_code == 200 and first.json()["points"][0]["n_weak"] == 100
    etag = first.headers["etag"]

    again = api.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert api.get(url).content == first.content  # from the cache, byte for byte
    other_prices = api.get("/frontier/cities?weak_cost=0.2&gold_cost=1")
    assert other_prices.headers["etag"] != etag and other_prices.json()["weak_cost"] == 0.2

    finish_a_trial(cities_task, 200, 0.8)  # the task's results move: the cached answer is stale
    after = api.get(url, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert [p["n_weak"] for p in after.json()["points"]] == [100, 200]
    # A trial stored done any other way (an import, plain SQL) is counted at the next read, and moves it too.
    store(cities_task, [{"model": MINILM, "method": "seq_sft", "recipe": 0, "n_weak": 300, "n_gold": 10, "seed": 0,
                         "status": "done", "current": True, "correct": None, "accuracy": 0.9}])
    imported = api.get(url, headers={"If-None-Match": after.headers["etag"]})
    assert imported.status_code == 200 and [p["n_weak"] for p in imported.json()["points"]] == [100, 200, 300]

    marginal = api.get("/frontier/cities/marginal?weak_cost=0.1&gold_cost=1&budget=100")
    assert api.get("/frontier/cities/marginal?weak_cost=0.1&gold_cost=1&budget=100",
                   headers={"If-None-Match": marginal.headers["etag"]}).status_code == 304


def test_the_etag_changes_with_the_code_that_computes_answers():
    """An ETag digests the code that computes answers, so a labelmix that answers differently never
    says 304 to a client holding an older one's answer. After the domain packages moved that code out
    of app/services, the digest read a folder that was gone: a test names the modules it must cover."""
    from app.api.stored_answers import answer_code

    app = Path(__file__).resolve().parents[2] / "app"
    covered = {str(p.relative_to(app)) for p in answer_code()}
    for module in ("results/frontier.py", "results/points.py", "results/routes/frontier.py", "stats/intervals.py",
                   "stats/surface.py", "allocations/recommend.py", "trials/aggregates.py", "results/schemas/frontier.py"):
        assert module in covered, module
