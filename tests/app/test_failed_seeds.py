"""Failed seeds: a trial says whether it learned (the engine's TrialResult.learned), a point how many
of its seeds failed and whether its seeds split into groups, and the recommendation warns
(`unstable_point`, `no_elicitation`).

No training: points are built directly, or trials written straight into the database, on Postgres
and on SQLite, and read both ways (from the points' aggregate rows and from every trial row).
"""

from __future__ import annotations

import itertools

import pytest
from conftest import api_on
from fastapi.testclient import TestClient
from test_frontier_api import CURRENT_VERSION, MINILM

from worker.engine.spec import ENGINE_VERSION, TrialSpec

N_TEST = 1000
MAJORITY = 0.5
_keys = (f"failed-seeds-{i:06d}" for i in itertools.count())


def point(n_weak: int, n_gold: int, accuracies: list[float], learned: list[bool | None],
          method: str = "seq_sft"):
    """A point as group_trials makes it: one trial per seed, 1,000 test examples, no per-example records."""
    from app.results.points import PointStats

    seeds, k = list(range(len(accuracies))), len(accuracies)
    return PointStats(method, n_weak, n_gold, MINILM, "fast", "default", trial_ids=[100 + s for s in seeds],
                      seeds=seeds, selection=list(accuracies), holdout=list(accuracies),
                      test=list(accuracies), n_test=[N_TEST] * k, correct=[None] * k, learned=list(learned))


def codes(warnings: list[dict]) -> list[str]:
    return [w["code"] for w in warnings]


# --- a point's seeds ----------------------------------------------------------------------------


def test_a_seed_that_learned_nothing_beside_seeds_that_learned_is_a_split():
    from app.results.points import split

    assert split([0.52, 0.83, 0.84], [False, True, True], N_TEST)
    assert split([0.52, 0.83], [False, True], 0)  # no test size needed: the flags say it
    # Every seed failed, or no seed says (stored before the engine did): the flags alone split nothing.
    assert not split([0.51, 0.52], [False, False], N_TEST)
    assert not split([0.80, 0.81], [None, True], N_TEST)


def test_a_gap_wider_than_the_test_sample_explains_is_a_split():
    from app.results.points import SPLIT_Z, split

    # 0.70 and 0.78 on 1,000 examples: 0.08 apart, the gap's standard error 0.0195, so 4.1 of them.
    se = ((0.70 * 0.30 + 0.78 * 0.22) / N_TEST) ** 0.5
    assert 0.08 / se > SPLIT_Z
    assert split([0.70, 0.78], [True, True], N_TEST)
    assert split([0.70, 0.78, 0.785, 0.79], [None] * 4, N_TEST)  # the seeds' order does not matter
    # The same gap on 200 examples is within what the test sample alone gives two equal seeds.
    assert not split([0.70, 0.78], [True, True], 200)
    # Seeds spread evenly, however wide in all, are not groups: no gap between neighbours is large.
    assert not split([0.70, 0.72, 0.74, 0.76, 0.78], [True] * 5, N_TEST)
    assert not split([0.80], [True], N_TEST) and not split([], [], N_TEST)
    assert not split([0.70, 0.78], [True, True], 0)  # test size unknown: gaps are not judged


def test_a_point_counts_its_failed_seeds_and_says_so_in_its_summary():
    shaky = point(0, 256, [0.84, 0.52, 0.82], [True, False, None])
    assert (shaky.seeds_failed, shaky.seeds_learned, shaky.failed_seeds) == (1, 1, [1]) and shaky.seeds_split
    summary = shaky.summary(0.1, 1.0)
    assert (summary["seeds_failed"], summary["seeds_split"]) == (1, True)

    steady = point(160, 48, [0.80, 0.81, 0.79], [True, True, True])
    assert (steady.seeds_failed, steady.seeds_split) == (0, False)
    summary = steady.summary(0.1, 1.0)
    assert (summary["seeds_failed"], summary["seeds_split"]) == (0, False)
    # Seeds stored before the engine said: unknown, never counted as failed.
    assert point(160, 48, [0.80, 0.81], [None, None]).seeds_failed == 0


# --- warnings -----------------------------------------------------------------------------------


def recommend(points) -> dict:
    from app.allocations.recommend import recommendation

    return recommendation(points, {"weak_cost": 0.1, "gold_cost": 1.0}, MAJORITY)


def test_a_recommended_point_with_a_failed_seed_is_unstable():
    rec = recommend([
        point(0, 64, [0.70, 0.71, 0.72], [True] * 3),
        point(320, 32, [0.86, 0.52, 0.87], [True, False, True]),  # the best by far, and the cheapest
    ])
    assert (rec["n_weak"], rec["n_gold"], rec["seeds_failed"], rec["seeds_split"]) == (320, 32, 1, True)
    (unstable,) = [w for w in rec["warnings"] if w["code"] == "unstable_point"]
    assert "recommended point" in unstable["message"] and "seed(s) 1 learned nothing" in unstable["message"]
    assert "no_elicitation" not in codes(rec["warnings"])


def test_a_point_whose_seeds_all_learned_raises_no_warning_of_either_kind():
    rec = recommend([
        point(0, 64, [0.70, 0.71, 0.72], [True] * 3),
        point(320, 32, [0.86, 0.85, 0.87], [True] * 3),
    ])
    assert (rec["seeds_failed"], rec["seeds_split"]) == (0, False)
    assert not {"unstable_point", "no_elicitation"} & set(codes(rec["warnings"]))


def test_the_best_point_is_checked_too_when_a_cheaper_one_is_recommended():
    from app.allocations.recommend import warnings_for

    cheaper = point(0, 64, [0.80, 0.81, 0.805], [True] * 3)
    best = point(640, 64, [0.95, 0.66, 0.94], [True, True, True])  # seeds at 0.66 and 0.95: two groups
    warnings = warnings_for([cheaper, best], cheaper, [best], MAJORITY, None, best=best)
    (unstable,) = [w for w in warnings if w["code"] == "unstable_point"]
    assert "the best point (seq_sft, 640 weak + 64 gold labels)" in unstable["message"]
    assert "fall into groups" in unstable["message"] and "0.660, 0.940, 0.950" in unstable["message"]
    # The same answer with a best whose seeds agree: nothing to say.
    steady = point(640, 64, [0.84, 0.85, 0.86], [True] * 3)
    assert "unstable_point" not in codes(warnings_for([cheaper, steady], cheaper, [steady], MAJORITY, None,
                                                      best=steady))


def test_no_elicitation_when_gold_alone_teaches_nothing_at_the_most_gold_tried():
    # cities, as measured: all-gold stays at chance however much gold, the weak labeler carries the mixes.
    rec = recommend([
        point(0, 64, [0.60, 0.58], [True, True]),  # a smaller all-gold point learned: not the largest
        point(0, 256, [0.51, 0.50, 0.52], [False, False, False]),
        point(1280, 128, [0.63, 0.64, 0.63], [True] * 3),
    ])
    (warning,) = [w for w in rec["warnings"] if w["code"] == "no_elicitation"]
    assert "did not learn from gold labels alone" in warning["message"]
    assert "256 gold labels" in warning["message"]
    assert "no seed learned" in warning["message"] and "about the weak labeler" in warning["message"]

    # Seeds stored before the engine said: the interval reaching the majority rate says it instead.
    rec = recommend([point(0, 256, [0.51, 0.50], [None, None]), point(1280, 128, [0.63, 0.64], [None, None])])
    (warning,) = [w for w in rec["warnings"] if w["code"] == "no_elicitation"]
    assert "reaches the majority-class rate 0.500" in warning["message"]


def test_no_elicitation_only_speaks_of_the_most_gold_tried():
    mixes = [point(1280, 128, [0.88, 0.89], [True, True])]
    # The largest all-gold point learned: a smaller one that did not is no evidence against the model.
    rec = recommend([point(0, 16, [0.50, 0.51], [False, False]), point(0, 256, [0.80, 0.82], [True, True]),
                     *mixes])
    assert "no_elicitation" not in codes(rec["warnings"])
    # Another method learned from the same gold alone: the strong model can learn from gold.
    rec = recommend([point(0, 256, [0.50, 0.51], [False, False]),
                     point(0, 256, [0.80, 0.82], [True, True], method="logconf_sft"), *mixes])
    assert "no_elicitation" not in codes(rec["warnings"])
    # No all-gold point at all: nothing to say.
    assert "no_elicitation" not in codes(recommend(mixes)["warnings"])


# --- stored trials, both databases, both reads --------------------------------------------------


@pytest.fixture(params=["postgres", "sqlite"])
def client(request, tmp_path) -> TestClient:
    """The API on each database, with the built-in `cities` task registered."""
    client = api_on(request, tmp_path)
    from app.trials import aggregates as point_aggregates

    point_aggregates.forget_points()
    assert client.post("/tasks", data={"dataset": "cities"}).status_code == 201
    return client


# (n_weak, n_gold) -> per seed (test accuracy, learned); "absent": a result stored before the engine said.
TRIALS = {
    (0, 256): [(0.84, True), (0.52, False), (0.82, True)],
    (320, 32): [(0.80, True), (0.81, True)],
    (640, 64): [(0.86, "absent"), (0.87, None)],
    (1280, 128): [(0.88, True), (0.87, True), (0.89, True)],
}


def store_trials(trials: dict = TRIALS) -> None:
    from sqlalchemy import select

    from app.db.models import Task, Trial
    from app.db.session import session_scope

    with session_scope() as session:
        task_id = session.scalars(select(Task.id).where(Task.name == "cities")).one()
        for (n_weak, n_gold), seeds in trials.items():
            for seed, (accuracy, learned) in enumerate(seeds):
                spec = TrialSpec(task="cities", model=MINILM, method="seq_sft", n_weak=n_weak, n_gold=n_gold,
                                 seed=seed, recipe="fast")
                result = {"test_accuracy": accuracy, "n_test": N_TEST}
                if learned != "absent":
                    result["learned"] = learned
                session.add(Trial(
                    key=next(_keys), task_id=task_id, model=MINILM, method="seq_sft", n_weak=n_weak,
                    n_gold=n_gold, seed=seed, weak_labeler="default", spec=spec.model_dump(mode="json"),
                    recipe="fast",
                    task_version=CURRENT_VERSION, engine_version=ENGINE_VERSION, status="done", attempts=1,
                    test_accuracy=accuracy, selection_accuracy=accuracy, holdout_accuracy=accuracy,
                    test_auroc=0.5, wall_s=1.0, result=result,
                ))


def read_both() -> dict[str, dict]:
    """Each point's (learned, summary) read from its aggregate row and from every trial row."""
    from app.db.models import Task
    from app.db.session import session_scope
    from app.results.points import with_details
    from rowwise_reads import current_recipe_points_rowwise

    from app.results.recipes import current_recipe_points

    answers = {}
    with session_scope() as session:
        task = session.query(Task).filter_by(name="cities").one()
        for name, read in (("rows", current_recipe_points_rowwise), ("aggregates", current_recipe_points)):
            _, points, _ = read(session, task, None, None)
            with_details(points)
            answers[name] = {(p.n_weak, p.n_gold): (list(p.learned), p.summary(0.1, 1.0)) for p in points}
    return answers


def test_failed_seeds_are_carried_from_trials_to_points_alike_on_both_reads(client):
    store_trials()
    answers = read_both()
    assert answers["aggregates"] == answers["rows"]
    points = answers["aggregates"]
    assert points[0, 256][0] == [True, False, True]
    assert points[640, 64][0] == [None, None]  # stored before the engine said: unknown
    flags = {key: (summary["seeds_failed"], summary["seeds_split"]) for key, (_, summary) in points.items()}
    assert flags == {(0, 256): (1, True), (320, 32): (0, False), (640, 64): (0, False),
                     (1280, 128): (0, False)}

    body = client.get("/frontier/cities", params={"weak_cost": 0.1, "gold_cost": 1}).json()
    served = {(p["n_weak"], p["n_gold"]): (p["seeds_failed"], p["seeds_split"]) for p in body["points"]}
    assert served.items() <= flags.items() and served


def test_an_aggregate_row_written_before_it_kept_learned_reads_it_from_its_trials(client):
    """Such a row is rewritten only when its point gets another trial; until then its trials answer."""
    from app.db.models import PointAggregate
    from app.db.session import session_scope
    from app.trials import aggregates as point_aggregates

    store_trials()
    read_both()  # the aggregate rows are written now
    with session_scope() as session:
        for row in session.query(PointAggregate):
            row.trials = {k: v for k, v in row.trials.items() if k != "learned"}
    point_aggregates.forget_points()
    answers = read_both()
    assert answers["aggregates"] == answers["rows"]
    assert answers["aggregates"][0, 256][0] == [True, False, True]


def test_an_allocation_answered_from_stored_trials_warns_of_its_failed_seed(client):
    from app.allocations.recommend import recommendation
    from app.db.models import Task
    from app.db.session import session_scope
    from app.results.recipes import current_recipe_points

    # The best point at $256: one seed of three learned nothing, and its mean is still the highest.
    store_trials({(0, 256): [(0.74, True), (0.73, True)],
                  (1280, 128): [(0.95, True), (0.51, False), (0.96, True)]})
    with session_scope() as session:
        task = session.query(Task).filter_by(name="cities").one()
        _, points, _ = current_recipe_points(session, task, None, None)
        rec = recommendation(points, {"weak_cost": 0.1, "gold_cost": 1.0, "budget": 256}, MAJORITY)
    assert (rec["n_weak"], rec["seeds_failed"], rec["seeds_split"]) == (1280, 1, True)
    assert "unstable_point" in codes(rec["warnings"]) and "no_elicitation" not in codes(rec["warnings"])


def test_a_study_row_counts_seeds_that_did_not_learn_apart_from_trials_that_errored(client, monkeypatch):
    from app.db.models import Trial
    from app.db.session import session_scope
    from app.dispatch import InProcessDispatcher

    monkeypatch.setattr(InProcessDispatcher, "enqueue_trials", lambda self, ids: None)
    body = {"task": "capitals", "budgets": [8], "weak_shares": [0, 1], "seeds": [0, 1, 2],
            "params": {"max_steps_per_stage": 2, "n_test": 20, "max_length": 32, "eval_every": 1}}
    response = client.post("/studies", json=body)
    assert response.status_code == 202, response.text
    study = response.json()
    by_share = {p["weak_share"]: p for p in study["points"]}
    gold, weak = by_share[0], by_share[1]
    # All gold: seed 1 learned nothing, seed 2 errored. All weak: every seed learned.
    outcomes = {**dict(zip(gold["trial_ids"], [(0.80, True), (0.50, False), None], strict=True)),
                **{i: (0.70 + 0.01 * n, True) for n, i in enumerate(weak["trial_ids"])}}
    with session_scope() as session:
        for trial_id, outcome in outcomes.items():
            trial = session.get(Trial, trial_id)
            if outcome is None:
                trial.status, trial.error = "failed", "boom"
                continue
            accuracy, learned = outcome
            trial.status, trial.test_accuracy, trial.test_auroc = "done", accuracy, accuracy
            trial.result = {"test_accuracy": accuracy, "n_test": 200, "learned": learned}
    rows = {p["weak_share"]: p for p in client.get(f"/studies/{study['id']}").json()["points"]}
    counts = {share: tuple(row[k] for k in ("seeds_done", "seeds_failed", "seeds_errored", "seeds_split"))
              for share, row in rows.items()}
    assert counts == {0: (2, 1, 1, True), 1: (3, 0, 0, False)}
    assert "collapsed" not in rows[0]
