"""Bad requests to the service get a 4xx naming the field, never a 500; and the health checks.

Nothing here trains: the dispatcher is replaced by a recorder, so even a request that wrongly got
through would only be recorded (and the test would fail on its status code).
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

VALID = {"task": "cities", "budget": 50, "weak_cost": 0.1, "gold_cost": 1, "methods": ["seq_sft"], "max_trials": 2}


@pytest.fixture
def enqueued(monkeypatch):
    """Record what would be sent to the workers instead of running it."""
    from app.dispatch import InProcessDispatcher

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(InProcessDispatcher, "enqueue_trials", lambda self, ids: calls.append(("trials", list(ids))))
    monkeypatch.setattr(InProcessDispatcher, "enqueue_advance", lambda self, a: calls.append(("advance", a)))
    return calls


@pytest.fixture
def client(api, enqueued):
    return api


def assert_rejected(response, field: str | tuple[str, ...], status: int = 422, words: tuple[str, ...] = ()) -> None:
    """A 4xx whose detail locates the field (a path for nested ones) and gives the reason."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    path = ["body", *((field,) if isinstance(field, str) else field)]
    locs = [d["loc"] for d in detail]
    assert any(loc[: len(path)] == path for loc in locs), locs
    message = " ".join(d["msg"] for d in detail)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"budget": 0}, "budget", ("greater than 0",)),
        ({"budget": -5}, "budget", ("greater than 0",)),
        ({"weak_cost": 0}, "weak_cost", ("greater than 0",)),
        ({"gold_cost": -1}, "gold_cost", ("greater than 0",)),
        ({"methods": ["seq_sft", "magic"]}, "methods", ("seq_sft",)),
        ({"methods": []}, "methods", ("at least one method",)),
        # the parameter is named by the error's location: ["body", "params", "no_such_param"]
        ({"params": {"no_such_param": 1}}, ("params", "no_such_param"), ("Extra inputs",)),
        ({"params": {"lr": -1}}, ("params", "lr"), ("greater than 0",)),
        ({"seeds": [0, 1, 0]}, "seeds", ("distinct",)),
        ({"seeds": []}, "seeds", ()),
        ({"max_trials": 0}, "max_trials", ("greater than or equal to 1",)),
        ({"surprise": True}, "surprise", ("Extra inputs",)),
        ({"task": None}, "task", ()),
    ],
    ids=[
        "budget-0", "budget-negative", "weak_cost-0", "gold_cost-negative", "unknown-method", "no-methods",
        "unknown-param", "bad-param-value", "repeated-seeds", "no-seeds", "max_trials-0", "unknown-field",
        "no-task",
    ],
)
def test_invalid_body_is_422_naming_the_field(client, table_counts, enqueued, change, field, words):
    response = client.post("/allocate", json={**VALID, **change})
    assert_rejected(response, field, words=words)
    assert table_counts() == {t: 0 for t in table_counts()}  # not even the task was registered
    assert enqueued == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        # seq_sft needs 3 labels: 0.3 at weak 0.1 / gold 1
        ({"budget": 0.1, "methods": ["seq_sft"]}, "budget", ("0.1 is too small", "seq_sft", "0.3")),
        # uncertainty_sft needs 3 weak and 3 gold labels: 3.3
        ({"budget": 2, "methods": ["uncertainty_sft"]}, "budget", ("too small", "uncertainty_sft", "3.3")),
        # one of the asked methods unaffordable is an error, not a silent drop
        ({"budget": 1, "methods": ["seq_sft", "uncertainty_sft"]}, "budget", ("uncertainty_sft",)),
        # the default methods: none affordable
        ({"budget": 0.1, "methods": None}, "budget", ("too small",)),
        ({"model": "no-such-model"}, "model", ("no-such-model",)),
        ({"methods": ["icl"], "model": "minilm-l6"}, "methods", ("icl", "encoder")),
        ({"methods": ["seq_sft", "icl"]}, "methods", ("icl", "causal")),
    ],
    ids=["seq_sft-budget", "uncertainty-budget", "one-method-unaffordable", "default-methods-budget",
         "unknown-model", "icl-on-encoder", "icl-among-methods"],
)
def test_request_the_service_cannot_run_is_422_naming_the_field(client, table_counts, enqueued, change, field, words):
    response = client.post("/allocate", json={**VALID, **change})
    assert_rejected(response, field, words=words)
    counts = table_counts()
    assert counts["tasks"] <= 1  # the built-in task may have been registered on the way
    assert {t: n for t, n in counts.items() if t != "tasks"} == {t: 0 for t in counts if t != "tasks"}
    assert enqueued == []


def test_unknown_task_is_404(client, table_counts, enqueued):
    response = client.post("/allocate", json={**VALID, "task": "no-such-task"})
    assert response.status_code == 404, response.text
    assert "no-such-task" in response.json()["detail"]
    assert table_counts() == {t: 0 for t in table_counts()}
    assert enqueued == []


def test_a_valid_request_is_accepted_and_queued_without_training(client, table_counts, enqueued):
    # The control for the rejections above: the same body, valid, gets through (on Postgres, with
    # its Optuna study beside the app's tables); the trials are only recorded, never run.
    response = client.post("/allocate", json=VALID)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "running" and body["task"] == "cities"
    assert body["request"]["methods"] == ["seq_sft"]
    assert body["progress"]["points_asked"] == 2 and body["progress"]["trials_total"] == 4
    trial_ids = [t["id"] for t in body["trials"]]
    assert len(trial_ids) == 4 and {t["status"] for t in body["trials"]} == {"queued"}
    assert enqueued == [("trials", trial_ids)]
    assert table_counts("allocations", "study_points", "trials") == {"allocations": 1, "study_points": 2, "trials": 4}

    again = client.get(f"/allocations/{body['id']}")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert client.get(f"/trials/{trial_ids[0]}").json()["status"] == "queued"
    assert [t["id"] for t in client.get("/trials", params={"status": "queued"}).json()] == sorted(trial_ids)


def test_unknown_ids_are_404(client):
    response = client.get("/allocations/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "00000000-0000-0000-0000-000000000000" in response.json()["detail"]

    response = client.get("/trials/987654")
    assert response.status_code == 404
    assert "987654" in response.json()["detail"]


def test_trial_listing_filters_are_validated(client):
    response = client.get("/trials", params={"status": "bogus"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "status"]

    response = client.get("/trials/not-a-number")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "trial_id"]

    response = client.get("/trials", params={"limit": 0})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]

    response = client.get("/trials", params={"task": "no-such-task"})
    assert response.status_code == 404

    response = client.get("/trials", params={"status": "done"})
    assert response.status_code == 200 and response.json() == []


# --- health ------------------------------------------------------------------------------------


def test_healthz(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_embedded(api):
    response = api.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == body["checks"]["workers"] == "embedded (in-process)"


def test_readyz_with_an_unreachable_broker_is_503(make_api):
    api = make_api(broker="redis://127.0.0.1:1/0")  # nothing listens on port 1

    started = time.monotonic()
    response = api.get("/readyz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable"), body
    assert body["checks"]["workers"] == "unknown"
    assert elapsed < 6, f"readiness took {elapsed:.1f} s to give up on a closed port"


def test_readyz_with_an_unreachable_database_is_503(configure, pg_url):
    from fastapi.testclient import TestClient

    from app.main import create_app

    configure(pg_url.rsplit("/", 1)[0] + "/labelmix_test_no_such_database")
    client = TestClient(create_app())  # no start-up: it would need the database
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unreachable")


def test_reading_an_allocation_takes_the_same_few_queries_whatever_its_size(client):
    from sqlalchemy import event

    from app.db.session import get_engine

    def statements_to_read(max_trials: int) -> int:
        made = client.post("/allocate", json={**VALID, "max_trials": max_trials, "budget": 40 + max_trials})
        assert made.status_code == 202, made.text
        seen: list[str] = []
        listen = lambda *args: seen.append(args[2])  # noqa: E731  (before_cursor_execute's statement)
        event.listen(get_engine(), "before_cursor_execute", listen)
        try:
            assert client.get(f"/allocations/{made.json()['id']}").status_code == 200
        finally:
            event.remove(get_engine(), "before_cursor_execute", listen)
        return len(seen)

    # Before: one query per point for its trials (lazy loading).
    assert statements_to_read(1) == statements_to_read(3) <= 6
