"""A fresh process reads each task's main points before anyone asks (app.results.warm_reads):
the first frontier after a restart then reads no point, and answers as a cold read would."""

from __future__ import annotations

import pytest
from test_frontier_api import MINILM
from test_stored_reads import cities_task, store  # noqa: F401 (a fixture)

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite


def rows(n_weak: int) -> list[dict]:
    return [{"model": MINILM, "method": "seq_sft", "recipe": 0, "n_weak": n_weak, "n_gold": 10, "seed": seed,
             "status": "done", "current": True, "correct": None, "accuracy": 0.6 + 0.01 * seed} for seed in range(3)]


def test_primed_points_answer_the_first_frontier_without_reading_them(api, cities_task, monkeypatch):  # noqa: F811
    from app.results import warm_reads
    from app.trials import aggregates as point_aggregates

    store(cities_task, rows(100) + rows(200))
    url = "/frontier/cities?weak_cost=0.1&gold_cost=1"
    point_aggregates.forget_points()
    cold = api.get(url)
    assert cold.status_code == 200 and len(cold.json()["points"]) == 2

    point_aggregates.forget_points()  # as a process starting
    thread = warm_reads.start_priming()
    thread.join(timeout=60)
    assert not thread.is_alive()

    def no_reads(*args, **kwargs):
        raise AssertionError("the primed points were read again")

    monkeypatch.setattr(point_aggregates, "_read_points", no_reads)
    primed = api.get(url.replace("0.1", "0.2"))  # not the cached answer: computed from the kept points
    assert primed.status_code == 200
    monkeypatch.undo()
    point_aggregates.forget_points()
    assert primed.json() == api.get(url.replace("0.1", "0.2")).json()


def test_the_app_primes_at_start_up_unless_told_not_to(api, cities_task, monkeypatch):  # noqa: F811
    import threading

    from fastapi.testclient import TestClient

    from app.config import get_settings
    from app.main import create_app
    from app.trials import aggregates as point_aggregates

    store(cities_task, rows(100))
    point_aggregates.forget_points()
    monkeypatch.setenv("LABELMIX_PRIME_READS", "true")  # the default; tests turn it off (conftest.set_app_env)
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        for thread in threading.enumerate():
            if thread.name == "labelmix-prime-reads":
                thread.join(timeout=60)
        monkeypatch.setattr(point_aggregates, "_read_points", lambda *a, **k: [])  # nothing more is read
        answer = client.get("/frontier/cities?weak_cost=0.3&gold_cost=1")
    assert answer.status_code == 200 and [p["n_weak"] for p in answer.json()["points"]] == [100]
