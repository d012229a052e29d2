"""Sweeps: `POST /allocate` with several budgets, one allocation each, sharing their trials.

The validation tests train nothing (the dispatcher is replaced by a recorder); the embedded test
trains four tiny trials in-process on SQLite, as tests/app/test_embedded.py does.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import optuna
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

# The same 4xx shape as single allocations, and the same recorder in place of the workers.
from test_allocate_validation import assert_rejected, client, enqueued  # noqa: F401 (fixtures)

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
TINY = {"max_steps_per_stage": 3, "eval_every": 2, "n_test": 32, "max_length": 32}
VALID = {"task": "cities", "budgets": [50, 20], "weak_cost": 0.1, "gold_cost": 1, "methods": ["seq_sft"],
         "max_trials": 2}


# --- validation (nothing trains) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"budget": 50}, "budgets", ("not both",)),
        ({"budgets": None}, "budgets", ("budget", "budgets")),
        ({"budgets": [20, 50, 20]}, "budgets", ("distinct",)),
        ({"budgets": [20, 0]}, ("budgets", 1), ("greater than 0",)),
        ({"budgets": [-5, 20]}, ("budgets", 0), ("greater than 0",)),
        ({"budgets": list(range(1, 14))}, "budgets", ("at most 12",)),
        ({"budgets": []}, "budgets", ("at least 1",)),
        ({"budgets": [20, "lots"]}, ("budgets", 1), ()),
    ],
    ids=["both", "neither", "duplicates", "zero", "negative", "more-than-12", "empty", "not-a-number"],
)
def test_invalid_budgets_are_422_naming_the_field(client, table_counts, enqueued, change, field, words):
    response = client.post("/allocate", json={**VALID, **change})
    assert_rejected(response, field, words=words)
    assert table_counts() == {t: 0 for t in table_counts()}  # not even the task was registered
    assert enqueued == []


def test_neither_budget_nor_budgets_is_422(client, table_counts, enqueued):
    body = {k: v for k, v in VALID.items() if k != "budgets"}
    assert_rejected(client.post("/allocate", json=body), "budgets", words=("budget", "budgets"))
    assert table_counts()["allocations"] == 0 and enqueued == []


def test_a_budget_too_small_rejects_the_whole_sweep_naming_budgets(client, table_counts, enqueued):
    # seq_sft needs 3 labels: 0.3 at weak 0.1 / gold 1.
    response = client.post("/allocate", json={**VALID, "budgets": [0.1, 20]})
    assert_rejected(response, "budgets", words=("budget 0.1 is too small", "seq_sft"))
    counts = table_counts()
    assert {t: n for t, n in counts.items() if t != "tasks"} == {t: 0 for t in counts if t != "tasks"}
    assert enqueued == []


def test_budgets_are_sorted_on_the_way_in():
    from app.allocations.schemas.allocations import AllocationRequest

    request = AllocationRequest(**{**VALID, "budgets": [64, 16, 32.5]})
    assert request.budgets == [16, 32.5, 64] and request.budget is None
    assert AllocationRequest(**{**VALID, "budgets": None, "budget": 5}).budgets is None


def test_unknown_sweep_is_404_naming_it(client):
    response = client.get("/sweeps/no-such-sweep")
    assert response.status_code == 404
    assert "no-such-sweep" in response.json()["detail"]


def test_a_valid_sweep_creates_one_allocation_per_budget_and_queues_once(client, table_counts, enqueued):
    response = client.post("/allocate", json=VALID)
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert sweep["status"] == "running" and sweep["task"] == "cities"
    assert sweep["budgets"] == [20, 50]
    assert [a["request"]["budget"] for a in sweep["allocations"]] == [20, 50]
    for allocation in sweep["allocations"]:
        assert allocation["sweep_id"] == sweep["id"]
        assert "budgets" not in allocation["request"]  # each is a normal allocation of one budget
        assert allocation["progress"]["points_asked"] == 2
    assert [b["budget"] for b in sweep["best_at_budget"]] == [20, 50]
    assert all(b["recommendation"] is None and b["candidate_points"] == 0 for b in sweep["best_at_budget"])

    trial_ids = [t["id"] for a in sweep["allocations"] for t in a["trials"]]
    assert len(trial_ids) == 8 == len(set(trial_ids))  # 2 budgets x 2 points x 2 seeds, none shared here
    assert enqueued == [("trials", trial_ids)]  # one enqueue, after commit
    assert table_counts("allocations", "study_points", "trials") == {"allocations": 2, "study_points": 4, "trials": 8}

    again = client.get(f"/sweeps/{sweep['id']}")
    assert again.status_code == 200 and again.json()["id"] == sweep["id"]
    one = client.get(f"/allocations/{sweep['allocations'][0]['id']}").json()
    assert one["sweep_id"] == sweep["id"]

    # A plain allocation belongs to no sweep, and its stored request is as before.
    plain = client.post("/allocate", json={**{k: v for k, v in VALID.items() if k != "budgets"}, "budget": 20})
    assert plain.status_code in (200, 202), plain.text
    assert plain.json()["sweep_id"] is None and "budgets" not in plain.json()["request"]


def test_trials_shared_between_budgets_are_enqueued_once(client, enqueued):
    # At $1 a label, $5 and $5.5 buy the same labels: the two allocations' points coincide.
    response = client.post("/allocate", json={**VALID, "budgets": [5, 5.5], "weak_cost": 1, "gold_cost": 1})
    assert response.status_code == 202, response.text
    sweep = response.json()
    first, second = ([t["id"] for t in a["trials"]] for a in sweep["allocations"])
    assert first and sorted(first) == sorted(second)  # the same stored trials (keys do not depend on the budget)
    assert len(enqueued) == 1 and sorted(enqueued[0][1]) == sorted(first)  # each sent once


# --- best_at_budget over the union (service level, no database) ------------------------------------


def _trial(trial_id: int, n_weak: int, n_gold: int, accuracy: float, status: str = "done"):
    from app.db.models import Trial

    return Trial(
        id=trial_id, key=f"k{trial_id}", task_id=1, model="minilm-l6", method="seq_sft", n_weak=n_weak, n_gold=n_gold,
        seed=0, weak_labeler="sft:minilm-l3", recipe="fast", task_version=1, spec={"params": {}}, status=status,
        result={"n_test": 200} if status == "done" else None,
        test_accuracy=accuracy if status == "done" else None,
        selection_accuracy=accuracy if status == "done" else None,
        holdout_accuracy=accuracy if status == "done" else None,
    )


def _allocation(budget: float, points: list[tuple[int, int, list]]):
    from app.db.models import Allocation, StudyPoint, Task

    task = Task(name="t", source="builtin", n_pool=1000, n_test=200, pool_positive_rate=0.5, test_positive_rate=0.5)
    allocation = Allocation(
        id=f"a{budget}", request={"budget": budget, "weak_cost": 0.1, "gold_cost": 1.0}, status="done", task=task,
    )
    for number, (n_weak, n_gold, trials) in enumerate(points):
        allocation.points.append(StudyPoint(number=number, method="seq_sft", n_weak=n_weak, n_gold=n_gold,
                                            trials=trials))
    return allocation


def test_best_at_a_dearer_budget_chooses_among_the_cheaper_budgets_points():
    from app.allocations import sweeps

    shared = _trial(1, 60, 0, 0.90)  # costs 6: found by the $6 allocation, and the best of all
    cheap = _allocation(6, [(60, 0, [shared]), (0, 6, [_trial(2, 0, 6, 0.55)])])
    dear = _allocation(12, [
        (120, 0, [_trial(3, 120, 0, 0.60)]),
        (0, 12, [_trial(4, 0, 12, 0.52)]),
        (60, 6, [_trial(5, 60, 6, 0.0, status="running")]),  # not done: no candidate
        (30, 0, [_trial(6, 30, 0, 0.58)]),  # a $12 point that costs 3: a candidate at $6 too
        (60, 0, [shared]),  # the same stored trial, reached again: counted once
    ])
    allocations = [cheap, dear]

    at_12 = sweeps.candidate_trials(allocations, 12, 0.1, 1.0)
    assert sorted(t.id for t in at_12) == [1, 2, 3, 4, 6]
    at_6 = sweeps.candidate_trials(allocations, 6, 0.1, 1.0)
    assert sorted(t.id for t in at_6) == [1, 2, 6]

    best_12 = sweeps.best_at_budget(allocations, dear)
    assert best_12.budget == 12 and best_12.candidate_trial_ids == [1, 2, 3, 4, 6] and best_12.candidate_points == 5
    rec = best_12.recommendation.model_dump()
    assert (rec["n_weak"], rec["n_gold"], rec["cost"]) == (60, 0, 6)  # the $6 allocation's point wins at $12
    assert rec["unspent"] == 6  # measured against $12
    best_6 = sweeps.best_at_budget(allocations, cheap)
    assert best_6.recommendation.cost == 6 and best_6.candidate_points == 3

    nothing_done = _allocation(6, [(60, 0, [_trial(7, 60, 0, 0.0, status="queued")])])
    empty = sweeps.best_at_budget([nothing_done], nothing_done)
    assert empty.recommendation is None and empty.candidate_trial_ids == []


def test_sweep_status():
    from app.allocations.sweeps import status_of
    from app.db.models import Allocation

    def of(*statuses):
        return status_of([Allocation(status=s) for s in statuses])

    assert of("done", "done") == "done"
    assert of("done", "failed") == "failed"
    assert of("queued", "queued") == "queued"
    assert of("done", "queued") == "running"
    assert of("running", "queued") == "running"


# --- the migration ----------------------------------------------------------------------------------


def _allocation_columns_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return ({c["name"] for c in inspector.get_columns("allocations")},
                {i["name"] for i in inspector.get_indexes("allocations")})
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_sweep_migration_upgrades_and_downgrades(database, tmp_path, request, migrate, configure, schema_check):
    url = f"sqlite:///{tmp_path / 'labelmix.sqlite'}" if database == "sqlite" else request.getfixturevalue(
        "empty_pg_url")
    migrate(url, "0003")
    assert "sweep_id" not in _allocation_columns_and_indexes(url)[0]
    migrate(url)
    columns, indexes = _allocation_columns_and_indexes(url)
    assert "sweep_id" in columns and "ix_allocations_sweep_id" in indexes
    schema_check(url)

    configure(url)
    command.downgrade(Config(str(ALEMBIC_INI)), "0003")
    columns, indexes = _allocation_columns_and_indexes(url)
    assert "sweep_id" not in columns and "ix_allocations_sweep_id" not in indexes
    migrate(url)
    schema_check(url)


# --- a real sweep, embedded (trains four tiny trials) -------------------------------------------------


def finished(api, path: str, timeout_s: float = 600) -> dict:
    """Poll a sweep or allocation until it is done or failed; its last state."""
    deadline = time.monotonic() + timeout_s
    while (state := api.get(path).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    return state


def embedded_allocation(tmp_path, configure, migrate, request: dict) -> dict:
    """POST /allocate on a fresh embedded service (SQLite under tmp_path), then its finished state."""
    url = f"sqlite:///{tmp_path / 'labelmix.sqlite'}"
    migrate(url)
    configure(url)
    from app.main import create_app

    with TestClient(create_app()) as api:
        response = api.post("/allocate", json=request)
        assert response.status_code == 202, response.text
        return finished(api, f"/allocations/{response.json()['id']}")


def test_sweep_completes_embedded_and_shares_points_between_budgets(tmp_path, configure, migrate):
    db = tmp_path / "labelmix.sqlite"
    url = f"sqlite:///{db}"
    migrate(url)
    configure(url)
    from app.allocations import sweeps
    from app.db.session import session_scope
    from app.main import create_app

    request = {"task": "cities", "budgets": [12, 6], "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
               "max_trials": 2, "seeds": [0], "params": TINY}
    with TestClient(create_app()) as api:
        response = api.post("/allocate", json=request)
        assert response.status_code == 202, response.text
        sweep_id = response.json()["id"]
        sweep = finished(api, f"/sweeps/{sweep_id}")
        assert sweep["status"] == "done", sweep
        assert sweep["budgets"] == [6, 12]
        assert [a["request"]["budget"] for a in sweep["allocations"]] == [6, 12]
        assert all(a["sweep_id"] == sweep_id and a["status"] == "done" for a in sweep["allocations"])
        assert all(a["progress"]["trials_done"] == 2 for a in sweep["allocations"])

        at_6, at_12 = sweep["best_at_budget"]
        assert (at_6["budget"], at_12["budget"]) == (6, 12)
        assert at_6["recommendation"]["cost"] <= 6 and at_12["recommendation"]["cost"] <= 12
        six_trials = {t["id"] for t in sweep["allocations"][0]["trials"]}
        twelve_trials = {t["id"] for t in sweep["allocations"][1]["trials"]}
        assert six_trials <= set(at_12["candidate_trial_ids"])  # the $6 points compete at $12
        assert set(at_12["candidate_trial_ids"]) == six_trials | twelve_trials
        assert at_12["candidate_points"] == 4
        assert set(at_6["candidate_trial_ids"]) >= six_trials
        # Chosen among more points, the best at $12 is at least as accurate as the $12 allocation's own.
        own_12 = sweep["allocations"][1]["recommendation"]
        assert at_12["recommendation"]["best"]["accuracy"] >= own_12["best"]["accuracy"]

        # The same at the service level, straight from the rows.
        with session_scope() as session:
            allocations = sweeps.allocations_of(session, sweep_id)
            union = sweeps.candidate_trials(allocations, 12, 0.1, 1.0)
            assert {t.id for t in union} == six_trials | twelve_trials
            best = sweeps.best_at_budget(allocations, allocations[1]).recommendation
            assert best.model_dump(mode="json") == at_12["recommendation"]

        repeat = api.post("/allocate", json=request)
        assert repeat.status_code == 200, repeat.text
        again = repeat.json()
        assert again["status"] == "done" and again["id"] != sweep_id
        assert {t["id"] for a in again["allocations"] for t in a["trials"]} == six_trials | twelve_trials

    with sqlite3.connect(db) as conn:  # nothing trained twice
        assert conn.execute("SELECT status, attempts FROM trials").fetchall() == [("done", 1)] * 4
        assert conn.execute("SELECT count(DISTINCT sweep_id), count(*) FROM allocations").fetchall() == [(2, 4)]


def test_a_repeated_allocation_is_answered_from_stored_trials_even_past_the_opening_grid(tmp_path, configure, migrate):
    # seq_sft's opening grid has 3 points; the 4th comes from the sampler. Its seed comes from the
    # request, so the repeat proposes the same point and nothing trains again (it did: a 202).
    db = tmp_path / "labelmix.sqlite"
    url = f"sqlite:///{db}"
    migrate(url)
    configure(url)
    from app.main import create_app

    request = {"task": "cities", "budget": 12, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
               "max_trials": 4, "seeds": [0], "params": TINY, "weak_labeler": "bow"}
    with TestClient(create_app()) as api:
        response = api.post("/allocate", json=request)
        assert response.status_code == 202, response.text
        first = finished(api, f"/allocations/{response.json()['id']}")
        assert first["status"] == "done" and first["progress"]["points_asked"] == 4, first
        trained = {t["id"] for t in first["trials"]}

        again = api.post("/allocate", json=request)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "done"
        assert {t["id"] for t in again.json()["trials"]} == trained
        assert again.json()["recommendation"]["trial_ids"] == first["recommendation"]["trial_ids"]

        # The opening grid alone (3 points) is stored too: answered at once, though never asked as such.
        grid_only = api.post("/allocate", json={**request, "max_trials": 3})
        assert grid_only.status_code == 200, grid_only.text
        assert {t["id"] for t in grid_only.json()["trials"]} < trained

        # Neither answer from the store created an Optuna study: the search never ran.
        from app.allocations.search import optuna_storage
        from app.config import get_settings

        assert len(optuna.get_all_study_names(optuna_storage(get_settings().optuna_storage_url))) == 1
