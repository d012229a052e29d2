"""Grid studies: POST/GET /studies, the table and winners they compute, and the figure.

Only test_tiny_grid_runs_end_to_end trains (two tiny MiniLM trials on `capitals`); the others
replace the dispatcher by a recorder and write results into the trials table by hand, so the
expected table can be computed exactly.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from worker.engine.metrics import pack_correct

TINY = {"max_steps_per_stage": 2, "n_test": 20, "max_length": 32, "eval_every": 1}
VALID = {"task": "capitals", "budgets": [8], "weak_shares": [0, 1], "seeds": [0], "params": TINY}


@pytest.fixture
def enqueued(monkeypatch):
    """Record the trial ids sent to the workers instead of training them."""
    from app.dispatch import InProcessDispatcher

    calls: list[int] = []
    monkeypatch.setattr(InProcessDispatcher, "enqueue_trials", lambda self, ids: calls.extend(ids))
    return calls


def field_of(response) -> list[list]:
    assert response.status_code == 422, response.text
    return [d["loc"] for d in response.json()["detail"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"budgets": None}, "budgets"),
        ({"budgets": []}, "budgets"),
        ({"budgets": [8, -1]}, "budgets"),
        ({"budgets": list(range(1, 14))}, "budgets"),
        ({"weak_shares": [0, 1.5]}, "weak_shares"),
        ({"weak_shares": [i / 20 for i in range(12)]}, "weak_shares"),
        ({"seeds": [0, 0]}, "seeds"),
        ({"seeds": list(range(11))}, "seeds"),
        ({"methods": ["magic"]}, "methods"),
        ({"methods": ["seq_sft"] * 6}, "methods"),
        ({"methods": ["icl"]}, "methods"),  # minilm-l6 is an encoder
        ({"weak_cost": 0}, "weak_cost"),
        ({"recipe": "slow"}, "recipe"),
        ({"params": {"no_such_param": 1}}, "params"),
        ({"params": {"lr": -1}}, "params"),
        ({"model": "../../etc"}, "model"),
        ({"task": "no_such_task"}, "task"),
        ({"budgets": [0.1]}, "budgets"),  # nothing in the grid can train
    ],
)
def test_bad_requests_name_the_field(api, enqueued, table_counts, change, field):
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    locs = field_of(api.post("/studies", json=body))
    assert any(loc[:2] == ["body", field] for loc in locs), locs
    assert enqueued == []
    assert table_counts("grid_studies", "trials") == {"grid_studies": 0, "trials": 0}


def test_a_grid_over_the_trial_limit_is_refused(api, enqueued, table_counts, monkeypatch):
    from app.studies import grid

    monkeypatch.setattr(grid, "MAX_TRIALS", 3)
    response = api.post("/studies", json={**VALID, "weak_shares": [0, 0.5, 1], "seeds": [0, 1]})
    assert any(loc[:2] == ["body", "seeds"] for loc in field_of(response))
    assert "6 trials" in response.text
    assert table_counts("grid_studies", "trials") == {"grid_studies": 0, "trials": 0}


@pytest.mark.both_databases
def test_unknown_study_is_404(api):
    assert api.get("/studies/nope").status_code == 404


# --- the table, from trials finished by hand -------------------------------------------------------


N_TEST = 200


def fake_result(accuracy: float, rate: float, gold_best_step: int | None, rule: str = "early_stopping",
                learned: bool | None = True) -> dict:
    stages = [{"name": "weak", "rule": "fixed_schedule", "best_step": 4, "steps": 4, "n_train": 40}]
    if gold_best_step is not None:
        stages.append({"name": "gold", "rule": rule, "best_step": gold_best_step, "steps": 6, "n_train": 80})
    # Which of 200 test examples it got right: the first round(accuracy * 200).
    hits = np.arange(N_TEST) < round(accuracy * N_TEST)
    return {"test_accuracy": accuracy, "predicted_positive_rate": rate, "stages": stages, "n_test": N_TEST,
            "test_correct": pack_correct(hits), "learned": learned}


@pytest.fixture(params=["postgres", "sqlite"])
def backend(request, tmp_path, enqueued):
    """(client, finish) on each database: finish(trial_id, accuracy, result) marks a trial done."""
    if request.param == "postgres":
        client = request.getfixturevalue("api")
        db, run = request.getfixturevalue("clean_db"), request.getfixturevalue("sql_on")

        def finish(trial_id, accuracy, result):
            run(db, "UPDATE trials SET status='done', test_accuracy=%s, test_auroc=%s, result=%s::jsonb WHERE id=%s",
                (accuracy, accuracy, json.dumps(result), trial_id))

        yield client, finish
        return
    url = f"sqlite:///{tmp_path / 'labelmix.sqlite'}"
    request.getfixturevalue("migrate")(url)
    request.getfixturevalue("configure")(url)
    from app.main import create_app

    def finish(trial_id, accuracy, result):
        with sqlite3.connect(tmp_path / "labelmix.sqlite") as conn:
            conn.execute("UPDATE trials SET status='done', test_accuracy=?, test_auroc=?, result=? WHERE id=?",
                         (accuracy, accuracy, json.dumps(result), trial_id))

    with TestClient(create_app()) as client:
        yield client, finish


def test_table_winners_and_stage_summary_follow_the_trials(backend, enqueued):
    client, finish = backend
    body = {**VALID, "budgets": [2, 8], "weak_shares": [0, 0.5, 1], "seeds": [0, 1]}
    response = client.post("/studies", json=body)
    assert response.status_code == 202, response.text
    study = response.json()
    assert study["status"] == "queued" and study["trials"]["total"] == study["trials"]["queued"] == 10

    # $2 all gold buys 2 gold labels: too few for a stage, so that point is skipped, with the reason.
    assert [(s["budget"], s["weak_share"]) for s in study["skipped"]] == [(2, 0)]
    assert "n_gold=2" in study["skipped"][0]["reason"]
    counts = {(p["budget"], p["weak_share"]): (p["n_weak"], p["n_gold"]) for p in study["points"]}
    assert counts == {(2, 0.5): (10, 0), (2, 1): (20, 0), (8, 0): (0, 8), (8, 0.5): (40, 4), (8, 1): (80, 0)}
    assert sorted(enqueued) == sorted({i for p in study["points"] for i in p["trial_ids"]})

    # Accuracies per point and seed; the all-weak $8 point learned nothing on one seed (rate 0.01).
    accuracy = {(2, 0.5): (0.60, 0.64), (2, 1): (0.70, 0.66), (8, 0): (0.80, 0.70), (8, 0.5): (0.78, 0.76),
                (8, 1): (0.72, 0.50)}
    for point in study["points"]:
        where = (point["budget"], point["weak_share"])
        for seed, trial_id in enumerate(point["trial_ids"]):
            gold_step = {(8, 0): (0, 3), (8, 0.5): (6, 6)}.get(where, (None, None))[seed]
            failed = where == (8, 1) and seed == 1
            finish(trial_id, accuracy[where][seed],
                   fake_result(accuracy[where][seed], 0.01 if failed else 0.5, gold_step, learned=not failed))

    response = client.get(f"/studies/{study['id']}")
    assert response.status_code == 200
    study = response.json()
    assert study["status"] == "done" and study["trials"]["done"] == 10
    for row in study["points"]:
        accs = accuracy[(row["budget"], row["weak_share"])]
        assert row["seeds_done"] == 2
        assert row["accuracy"] == pytest.approx(statistics.fmean(accs), abs=1e-4)
        assert row["accuracy_sd"] == pytest.approx(statistics.stdev(accs), abs=1e-4)
        assert (row["accuracy_min"], row["accuracy_max"]) == (min(accs), max(accs))
        failed = (row["budget"], row["weak_share"]) == (8, 1)
        assert (row["seeds_failed"], row["seeds_split"], row["seeds_errored"]) == (int(failed), failed, 0)
        assert ("gold" in row["stages"]) == (row["n_gold"] > 0)
        interval = row["interval"]
        assert interval["level"] == 0.9 and interval["n_seeds"] == 2 and interval["n_test"] == N_TEST
        assert interval["low"] < row["accuracy"] < interval["high"] and "training seeds" in interval["covers"]
    gold = next(r for r in study["points"] if (r["budget"], r["weak_share"]) == (8, 0))["stages"]["gold"]
    assert gold == {"rule": "early_stopping", "best_steps": [0, 3], "steps": [6, 6]}

    winners = {w["budget"]: w for w in study["winners"]}
    assert winners[2]["best"]["weak_share"] == 1 and winners[2]["regime"] == "all-weak"
    assert winners[2]["gap"] == pytest.approx(0.68 - 0.62, abs=1e-4)
    assert winners[8]["best"]["weak_share"] == 0.5 and winners[8]["regime"] == "mixed"
    assert winners[8]["runner_up"]["weak_share"] == 0 and winners[8]["gap"] == pytest.approx(0.77 - 0.75, abs=1e-4)
    # 0.77 vs 0.75 on 200 examples and two seeds each: the paired interval of the gap holds zero.
    assert winners[8]["gap_interval"]["tie"] and winners[8]["gap_interval"]["paired"]

    # Gold stages: (8, 0) kept its start once and was best at step 3 > first evaluation (eval_every 1) once;
    # (8, 0.5) was best at its last step twice.
    assert study["stage_summary"] == {"gold_stages": 4, "kept_start": 1, "fixed_schedule": 0,
                                      "at_first_evaluation": 0, "past_first_evaluation": 3}

    listed = client.get("/studies").json()
    assert [s["id"] for s in listed] == [study["id"]] and listed[0]["status"] == "done"


# --- for real: two tiny trials through the embedded worker ------------------------------------------


def wait_done(api, study_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (study := api.get(f"/studies/{study_id}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, study
        time.sleep(0.5)
    return study


def test_tiny_grid_runs_end_to_end_and_a_repeat_trains_nothing(make_api, sql_on, clean_db):
    api = make_api()
    first = api.post("/studies", json=VALID)
    assert first.status_code == 202, first.text
    study = wait_done(api, first.json()["id"])
    assert study["status"] == "done" and study["trials"] == {"total": 2, "queued": 0, "running": 0, "done": 2,
                                                             "failed": 0}
    trials = {t["id"]: t for t in api.get("/trials", params={"task": "capitals"}).json()}
    for row in study["points"]:
        (trial_id,) = row["trial_ids"]
        assert row["accuracy"] == pytest.approx(trials[trial_id]["test_accuracy"], abs=1e-4)
        # The engine says whether each trial learned; the row counts the seeds that did not.
        learned = api.get(f"/trials/{trial_id}").json()["result"]["learned"]
        assert isinstance(learned, bool) and row["seeds_failed"] == (not learned) and not row["seeds_split"]
    best = max(study["points"], key=lambda r: r["accuracy"])
    (winner,) = study["winners"]
    assert winner["best"]["accuracy"] == best["accuracy"]
    assert winner["regime"] == ("all-gold" if best["n_weak"] == 0 else "all-weak")
    assert study["stage_summary"]["gold_stages"] == 1

    again = api.post("/studies", json=VALID)
    assert again.status_code == 200, again.text
    assert again.json()["id"] != study["id"]
    assert [p["trial_ids"] for p in again.json()["points"]] == [p["trial_ids"] for p in study["points"]]
    assert sql_on(clean_db, "SELECT count(*), sum(attempts) FROM trials")[0] == (2, 2)
    assert [s["id"] for s in api.get("/studies").json()] == [again.json()["id"], study["id"]]


# --- the figure and the printout, without a service -------------------------------------------------


def synthetic_study() -> dict:
    points = [
        {"budget": b, "weak_share": s, "method": "seq_sft", "n_weak": int(s * b * 10), "n_gold": int((1 - s) * b),
         "seeds_done": 3, "seeds_failed": int(i == 0 and j == 0), "seeds_errored": 0,
         "seeds_split": i == 0 and j == 0, "accuracy": 0.55 + 0.05 * i + 0.02 * j, "accuracy_sd": 0.02}
        for i, b in enumerate([16, 64, 256]) for j, s in enumerate([0.0, 0.5, 1.0])
    ]
    request = {"methods": ["seq_sft"], "model": "minilm-l6", "recipe": "fast", "weak_cost": 0.1, "gold_cost": 1.0,
               "budgets": [16, 64, 256], "weak_shares": [0.0, 0.5, 1.0], "seeds": [0, 1, 2]}
    winners = [{"budget": b, "best": {**points[3 * i + 2], "weak_share": 1.0}, "regime": "all-weak",
                "runner_up": {**points[3 * i + 1]}, "gap": 0.02} for i, b in enumerate([16, 64, 256])]
    return {"task": "capitals", "request": request, "points": points, "skipped": [], "winners": winners,
            "stage_summary": {"gold_stages": 6, "kept_start": 2, "fixed_schedule": 2, "at_first_evaluation": 1,
                              "past_first_evaluation": 1}}


def test_study_png_and_printout_from_a_synthetic_study(tmp_path, capsys):
    from app.study import print_study
    from app.study_plot import write_study_png

    path = tmp_path / "study.png"
    write_study_png(synthetic_study(), str(path))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    print_study(synthetic_study())
    printed = capsys.readouterr().err
    assert "all-weak wins" in printed
    # The one cell whose seed learned nothing is marked (the caption says what the mark means).
    assert "0.550 ± 0.020 !" in printed and printed.count("!") == 2 and "! = a seed learned nothing" in printed
