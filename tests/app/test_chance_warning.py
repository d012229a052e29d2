"""An allocation on a task nothing can learn (random labels, weak labels at chance) says so.

Real training on the embedded service over Postgres: the uploaded task's labels are coin flips, so
any accuracy above the majority rate is noise, and the recommendation must carry the warnings
instead of a confident "mixed regime".
"""

from __future__ import annotations

import csv
import io
import random
import time

import pytest

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

WORDS = "amber basil cedar delta ember fjord grove harbor iris jasper kelp lumen moss nectar onyx pine quartz".split()


def random_task_csv(n: int = 1200, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label", "weak_prob"])
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    for i, label in enumerate(labels):
        writer.writerow([f"{' '.join(rng.choices(WORDS, k=4))} {i}", label, round(rng.random(), 3)])
    return out.getvalue().encode()


@pytest.mark.slow
def test_an_allocation_at_chance_says_nothing_beats_chance(api):
    upload = api.post("/tasks", data={"name": "coin-flips"},
                      files={"file": ("coin-flips.csv", random_task_csv(), "text/csv")})
    assert upload.status_code == 201, upload.text
    request = {
        "task": "coin-flips", "budget": 40, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
        "max_trials": 2, "seeds": [0, 1], "params": {"max_steps_per_stage": 8, "eval_every": 4, "max_length": 32},
    }
    response = api.post("/allocate", json=request)
    assert response.status_code in (200, 202), response.text
    deadline = time.monotonic() + 600
    while (allocation := api.get(f"/allocations/{response.json()['id']}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, allocation["progress"]
        time.sleep(1)
    assert allocation["status"] == "done", allocation
    rec = allocation["recommendation"]
    codes = [w["code"] for w in rec["warnings"]]
    assert "chance" in codes and "weak_labels_at_chance" in codes, rec["warnings"]
    chance = next(w for w in rec["warnings"] if w["code"] == "chance")
    assert "nothing here beats chance" in chance["message"]
    interval = rec["expected_accuracy_interval"]
    assert interval["low"] <= rec["majority_rate"] and interval["high"] > interval["low"]
    assert interval["n_test"] == 240 and interval["level"] == 0.9
