"""A team deletes its own uploads, and its uploads and labeler builds count against its limits (issue 29).

On Postgres and on the embedded SQLite alike. The allocation whose rows the deletion must remove is
answered from stored trials (written by the service's own code, bench.service.measurements): nothing trains.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import redis
from conftest import api_on
from sqlalchemy import func, insert, select
from test_tasks_api import as_csv, rows, with_weak_probs
from typer.testing import CliRunner

from app.cli import app as cli

REQUEST = {"weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"], "max_trials": 2, "seeds": [0],
           "recipe": "fast", "budget": 6}


def upload(client, name: str, weak: bool = True, n: int = 60, headers: dict | None = None):
    records = rows(n, n)
    return client.post("/tasks", data={"name": name}, headers=headers or {},
                       files={"file": ("rows.csv", as_csv(with_weak_probs(records) if weak else records), "text/csv")})


def stored(task_name: str) -> str:
    """The name a keyless caller's upload is stored as (tasks.names)."""
    from app.auth.team import LOCAL_TEAM
    from app.tasks.names import stored_name

    return stored_name(LOCAL_TEAM, task_name)


def store_opening_trials(task_name: str) -> None:
    """Done trials for every point REQUEST opens with on the task: its allocation ends at once."""
    from app.allocations.lifecycle import prepare
    from app.allocations.sampler import opening_params
    from app.allocations.schemas.allocations import AllocationRequest
    from app.db.models import Task, Trial
    from app.db.session import session_scope
    from bench.service.measurements import done_trial_values
    from worker.engine.spec import Method

    rng = np.random.default_rng(0)
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == stored(task_name))).one()
        request, space = prepare(task, AllocationRequest(**REQUEST, task=task_name), model_is_causal=False)
        for params in opening_params(space, request.max_trials):
            point = space.point_for(Method(params["method"]), params["weak_share"])
            spec = space.spec(point, 0, task=task.name, weak_labeler=request.weak_labeler)
            session.execute(insert(Trial).values(**done_trial_values(task, spec, 0.7, {"torch": "test"}, rng)))


def counts(task_name: str) -> dict[str, int]:
    from app.db.models import Allocation, Example, PointAggregate, StudyPoint, Task, Trial
    from app.db.session import session_scope

    with session_scope() as session:
        task_id = session.scalars(select(Task.id).where(Task.name == stored(task_name))).first()
        of = {model: session.scalar(select(func.count()).select_from(model).where(model.task_id == task_id))
              for model in (Example, Trial, PointAggregate, Allocation)}
        points = session.scalar(select(func.count(StudyPoint.id)))
    return {"task": int(task_id is not None), **{m.__tablename__: n for m, n in of.items()}, "study_points": points}


def optuna_study_names() -> list[str]:
    from app.allocations.search import optuna_storage
    from app.config import get_settings

    return optuna.get_all_study_names(optuna_storage(get_settings().optuna_storage_url))


@pytest.fixture(params=["postgres", "sqlite"])
def service(request, tmp_path):
    """The API, embedded, on Postgres and on SQLite (conftest's `api` is the Postgres one)."""
    return api_on(request, tmp_path)


def test_a_team_deletes_its_upload_with_everything_measured_on_it(service):
    assert upload(service, "mine").status_code == 201
    store_opening_trials("mine")
    allocation = service.post("/allocate", json={**REQUEST, "task": "mine"}).json()
    assert allocation["status"] == "done", allocation
    assert service.get("/frontier/mine", params={"weak_cost": 0.1, "gold_cost": 1}).status_code == 200  # aggregates
    before = counts("mine")
    assert before["examples"] == 120 and before["trials"] >= 2 and before["point_aggregates"] >= 1
    assert before["allocations"] == 1 and before["study_points"] >= 1
    # Answered from the store, it searched nothing and made no Optuna study; one that searched has one.
    from app.allocations.search import optuna_storage
    from app.config import get_settings
    from app.db.models import Allocation
    from app.db.session import session_scope

    with session_scope() as session:
        study = session.get(Allocation, allocation["id"]).study_name
    optuna.create_study(study_name=study, storage=optuna_storage(get_settings().optuna_storage_url))
    assert study in optuna_study_names()

    response = service.delete("/tasks/mine")
    assert response.status_code == 200, response.text
    assert response.json() == {"task": "mine", "rows": 120, "trials": before["trials"], "allocations": 1, "studies": 0}
    assert counts("mine") == {"task": 0, "examples": 0, "trials": 0, "point_aggregates": 0, "allocations": 0,
                              "study_points": 0}
    assert study not in optuna_study_names()
    assert service.get("/tasks/mine").status_code == 404
    assert service.get(f"/allocations/{allocation['id']}").status_code == 404
    assert service.delete("/tasks/mine").status_code == 404
    assert upload(service, "mine").status_code == 201  # the name is free again


def test_a_running_allocation_blocks_the_deletion_until_it_ends(service):
    from sqlalchemy import update

    from app.db.models import Allocation, AllocationStatus
    from app.db.session import session_scope

    assert upload(service, "busy").status_code == 201
    store_opening_trials("busy")
    allocation = service.post("/allocate", json={**REQUEST, "task": "busy"}).json()
    with session_scope() as session:
        session.execute(update(Allocation).where(Allocation.id == allocation["id"]).values(status=AllocationStatus.running))
    response = service.delete("/tasks/busy")
    assert response.status_code == 409 and allocation["id"] in response.json()["detail"], response.text
    assert counts("busy")["task"] == 1 and counts("busy")["trials"] >= 2  # nothing half-deleted
    with session_scope() as session:
        session.execute(update(Allocation).where(Allocation.id == allocation["id"]).values(status=AllocationStatus.done))
    assert service.delete("/tasks/busy").status_code == 200


@pytest.fixture(params=["postgres", "sqlite"])
def two_teams(request, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELMIX_REQUIRE_API_KEYS", "true")
    client = api_on(request, tmp_path)

    def key(team: str) -> dict[str, str]:
        result = CliRunner().invoke(cli, ["keys", "create", "--team", team, "--label", "test"])
        assert result.exit_code == 0, result.output
        return {"Authorization": f"Bearer {result.stdout.strip().splitlines()[-1]}"}

    return client, key("a"), key("b")


def test_only_the_owning_team_deletes_an_upload_and_nobody_a_shared_task(two_teams):
    client, a, b = two_teams
    assert upload(client, "a-data", headers=a).status_code == 201
    assert client.delete("/tasks/a-data", headers=b).status_code == 404  # to team b it does not exist
    assert client.post("/tasks", data={"dataset": "capitals"}, headers=a).status_code in (200, 201)
    shared = client.delete("/tasks/capitals", headers=a)
    assert shared.status_code == 403 and "shared" in shared.json()["detail"]
    assert client.get("/tasks/capitals", headers=b).status_code == 200
    assert client.delete("/tasks/a-data", headers=a).status_code == 200


def test_a_team_at_its_task_cap_gets_429_until_it_deletes_one(service, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("LABELMIX_MAX_TASKS_PER_TEAM", "2")
    get_settings.cache_clear()
    assert upload(service, "one").status_code == 201
    assert upload(service, "two").status_code == 201
    refused = upload(service, "three")
    assert refused.status_code == 429 and "2 uploaded tasks" in refused.json()["detail"], refused.text
    assert counts("three")["task"] == 0
    assert service.delete("/tasks/one").status_code == 200
    assert upload(service, "three").status_code == 201


def test_stored_rows_are_capped_per_team_and_a_refused_upload_stores_nothing(service, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("LABELMIX_MAX_STORED_ROWS_PER_TEAM", "150")
    get_settings.cache_clear()
    assert upload(service, "first").status_code == 201  # 120 rows
    refused = upload(service, "second")
    assert refused.status_code == 429, refused.text
    assert "stores 120 rows" in refused.json()["detail"] and "120 would make 240" in refused.json()["detail"]
    assert counts("second") == {"task": 0, "examples": 0, "trials": 0, "point_aggregates": 0, "allocations": 0,
                                "study_points": counts("second")["study_points"]}


def test_a_labeler_build_counts_against_the_teams_work_limit(make_api, monkeypatch):
    # A broker nobody consumes: the first upload's labeler build stays queued, as on a busy deployment.
    broker = "redis://127.0.0.1:6379/13"
    redis.Redis.from_url(broker).flushdb()
    monkeypatch.setenv("LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM", "1")
    api = make_api(broker=broker)
    try:
        assert upload(api, "unlabeled-1", weak=False).status_code == 201
        refused = upload(api, "unlabeled-2", weak=False)
        assert refused.status_code == 429 and "1 of them weak-labeler builds" in refused.json()["detail"], refused.text
        assert counts("unlabeled-2")["task"] == 0
        assert upload(api, "labeled", weak=True).status_code == 201  # its own weak labels: no build
    finally:
        redis.Redis.from_url(broker).flushdb()


def test_a_labeler_build_for_a_deleted_task_keeps_nothing(service):
    from app import jobs
    from worker.engine.weak_labels import cache_dir_for

    assert upload(service, "short-lived").status_code == 201
    assert service.delete("/tasks/short-lived").status_code == 200
    jobs.build_weak_labels_job(stored("short-lived"))  # its message arrives after the deletion: nothing to build
    assert not cache_dir_for(stored("short-lived")).exists()
    assert counts("short-lived")["task"] == 0
