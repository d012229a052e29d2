"""The distributed setup for real: API over HTTP, Redis broker, a Celery worker process, Postgres.

Trials are real MiniLM trials kept tiny (a few steps, 32 test examples).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

REDIS_DB = 13  # a database of its own on the machine's Redis, flushed before each test
BROKER = f"redis://127.0.0.1:6379/{REDIS_DB}"
STALE_AFTER_S = 6
TINY = {"max_steps_per_stage": 3, "eval_every": 2, "n_test": 32, "max_length": 32}


@pytest.fixture
def broker() -> str:
    redis.Redis.from_url(BROKER).flushdb()
    return BROKER


class Workers:
    """Celery worker processes started as an operator would start them."""

    def __init__(self, db_url: str, broker_url: str, cache_dir: Path, log_dir: Path):
        self.env = {
            **os.environ,
            "LABELMIX_DATABASE_URL": db_url,
            "LABELMIX_BROKER_URL": broker_url,
            "LABELMIX_CACHE_DIR": str(cache_dir),
            "LABELMIX_STALE_TRIAL_AFTER_S": str(STALE_AFTER_S),
            "PYTHONUNBUFFERED": "1",
        }
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        n = len(self.procs)
        log = open(self.log_dir / f"worker{n}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", "trials,studies",
             "--pool", "solo", "--hostname", f"test{n}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
             "--loglevel", "INFO"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("worker*.log")))


@pytest.fixture
def workers(clean_db, broker, engine_cache_dir, tmp_path):
    pool = Workers(clean_db, broker, engine_cache_dir, tmp_path)
    yield pool
    pool.stop_all()


def wait_for(predicate, timeout: float, what: str, logs=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs()}")


def allocation_request(**overrides) -> dict:
    return {
        "task": "cities", "budget": 6, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
        "max_trials": 2, "seeds": [0], "params": TINY, **overrides,
    }


def follow(api, allocation_id: str, timeout: float, workers: Workers) -> dict:
    return wait_for(
        lambda: (a := api.get(f"/allocations/{allocation_id}").json())["status"] in ("done", "failed") and a,
        timeout, f"allocation {allocation_id}", workers.logs,
    )


def test_worker_completes_an_allocation_and_a_repeat_trains_nothing(make_api, workers, sql_on, clean_db):
    api = make_api(broker=BROKER)
    workers.start()
    response = api.post("/allocate", json=allocation_request())
    assert response.status_code == 202, response.text
    done = follow(api, response.json()["id"], 300, workers)
    assert done["status"] == "done", done
    assert done["recommendation"]["method"] == "seq_sft"
    rows = sql_on(clean_db, "SELECT status, attempts, worker IS NOT NULL, result IS NOT NULL FROM trials")
    assert len(rows) == done["progress"]["trials_total"] == 2
    assert all(row == ("done", 1, True, True) for row in rows), rows

    again = api.post("/allocate", json=allocation_request())
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "done"
    assert again.json()["recommendation"]["trial_ids"] == done["recommendation"]["trial_ids"]
    assert sql_on(clean_db, "SELECT count(*), sum(attempts) FROM trials")[0] == (2, 2)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_and_duplicates_nothing(make_api, workers, sql_on, clean_db):
    api = make_api(broker=BROKER)
    first = workers.start()
    # Long enough that the kill lands mid-training.
    request = allocation_request(max_trials=1, budget=40, params={**TINY, "max_steps_per_stage": 60, "patience": 100})
    response = api.post("/allocate", json=request)
    assert response.status_code == 202, response.text
    wait_for(lambda: sql_on(clean_db, "SELECT 1 FROM trials WHERE status = 'running'"), 120, "a running trial",
             workers.logs)
    time.sleep(2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert sql_on(clean_db, "SELECT status FROM trials") == [("running",)]

    workers.start()  # finds the silent trial by its stale heartbeat and runs it again
    done = follow(api, response.json()["id"], 400, workers)
    assert done["status"] == "done", done
    rows = sql_on(clean_db, "SELECT key, status, attempts, result IS NOT NULL FROM trials")
    assert len(rows) == 1, rows  # no duplicate trial
    _, status, attempts, has_result = rows[0]
    assert (status, attempts, has_result) == ("done", 2, True)
    # The killed run's message is never run twice to completion: nothing else is left queued.
    assert sql_on(clean_db, "SELECT count(*) FROM study_points")[0][0] == 1
