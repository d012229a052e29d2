"""The embedded default: no broker, a SQLite file, trials run in the API process."""

from __future__ import annotations

import sqlite3
import time

from fastapi.testclient import TestClient

TINY = {"max_steps_per_stage": 3, "eval_every": 2, "n_test": 32, "max_length": 32}


def finished(api, allocation_id: str, timeout_s: float) -> dict:
    """The allocation once it is done or failed, polled; fails the test past `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while (allocation := api.get(f"/allocations/{allocation_id}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, allocation
        time.sleep(0.5)
    return allocation


def test_allocation_completes_with_sqlite_and_no_broker(tmp_path, configure, migrate):
    db = tmp_path / "labelmix.sqlite"
    url = f"sqlite:///{db}"
    migrate(url)
    configure(url)
    from app.config import get_settings
    from app.main import create_app

    assert get_settings().embedded
    request = {"task": "cities", "budget": 6, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
               "max_trials": 2, "seeds": [0], "params": TINY}
    with TestClient(create_app()) as api:
        assert api.get("/readyz").json()["checks"]["broker"].startswith("embedded")
        response = api.post("/allocate", json=request)
        assert response.status_code == 202, response.text
        allocation = finished(api, response.json()["id"], timeout_s=300)
        assert allocation["status"] == "done", allocation
        assert allocation["progress"]["trials_done"] == 2
        assert allocation["recommendation"]["n_gold"] + allocation["recommendation"]["n_weak"] > 0

        repeat = api.post("/allocate", json=request)
        assert repeat.status_code == 200 and repeat.json()["status"] == "done"

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status, attempts FROM trials").fetchall() == [("done", 1), ("done", 1)]
    # Optuna's study sits in a sibling file: SQLite takes one writer at a time.
    assert (tmp_path / "labelmix-optuna.sqlite").exists()
