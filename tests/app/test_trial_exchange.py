"""`labelmix trials export` / `import`: done trials carried from one database to another read back as
the same measurements (the frontier they make is the same), an import twice stores nothing twice,
and a record that is not what was exported is refused by line with nothing stored. Trials are
written by the service's own code (bench.service.measurements); nothing trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import _sqlite_api
from sqlalchemy import func, insert, select
from test_task_deletion_and_quotas import stored, upload
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.models import Task, Trial
from app.db.session import session_scope
from worker.engine.spec import ENGINE_VERSION, TrialSpec

runner = CliRunner()
STUDY_TRIALS = Path(__file__).parents[2] / "docs/studies/study-word_definitions-fast-v4-trials.jsonl"
FRONTIER = {"weak_cost": 0.1, "gold_cost": 1}


def store_done_trials(task_name: str = "cities") -> None:
    from app.trials import aggregates as point_aggregates
    from bench.service.measurements import done_trial_values

    rng = np.random.default_rng(0)
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == task_name)).one()
        for n_weak, n_gold, accuracy in ((0, 64, 0.62), (640, 0, 0.66), (320, 32, 0.67)):
            for seed in (0, 1):
                spec = TrialSpec(task=task_name, n_weak=n_weak, n_gold=n_gold, seed=seed, recipe="fast",
                                 weak_labeler="sft:minilm-l3:8000", task_version=task.version)
                session.execute(insert(Trial).values(**done_trial_values(task, spec, accuracy, {"torch": "t"}, rng)))
        point_aggregates.refresh(session, task)


def done_trials() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count(Trial.id)).where(Trial.status == "done"))


def test_trials_carried_to_the_embedded_database_read_back_the_same(request, api, tmp_path):
    assert api.post("/tasks", data={"dataset": "cities"}).status_code in (200, 201)
    store_done_trials()
    frontier = api.get("/frontier/cities", params=FRONTIER).json()
    export = tmp_path / "trials.jsonl"
    written = runner.invoke(cli, ["trials", "export", str(export), "--task", "cities"])
    assert written.exit_code == 0 and "wrote 6 done trials" in written.stdout, written.output
    assert runner.invoke(cli, ["trials", "export", str(export)]).exit_code == 2  # never overwrites

    (tmp_path / "target").mkdir()
    embedded = _sqlite_api(request, tmp_path / "target")  # from here on the app and the CLI use SQLite
    assert done_trials() == 0
    first = runner.invoke(cli, ["trials", "import", str(export)])
    assert first.exit_code == 0 and "stored 6 trials (0 were done here already) of cities" in first.stdout, first.output
    again = runner.invoke(cli, ["trials", "import", str(export)])
    assert again.exit_code == 0 and "stored 0 trials (6 were done here already)" in again.stdout, again.output
    assert done_trials() == 6
    carried = embedded.get("/frontier/cities", params=FRONTIER).json()
    assert [(p["n_weak"], p["n_gold"], p["accuracy"], p["seeds"], p["interval"]) for p in carried["points"]] == [
        (p["n_weak"], p["n_gold"], p["accuracy"], p["seeds"], p["interval"]) for p in frontier["points"]]


@pytest.mark.parametrize("tamper, words", [
    (lambda r: r["spec"].update(n_gold=r["spec"]["n_gold"] + 1), "does not hash to its key"),
    (lambda r: r["result"].pop("test_accuracy"), "not a trial this labelmix can read"),
    (lambda r: r.pop("result"), "key, spec and result"),
])
def test_a_record_that_is_not_what_was_exported_is_refused_by_line(api, tmp_path, tamper, words):
    assert api.post("/tasks", data={"dataset": "cities"}).status_code in (200, 201)
    store_done_trials()
    export = tmp_path / "trials.jsonl"
    assert runner.invoke(cli, ["trials", "export", str(export)]).exit_code == 0
    lines = export.read_text().splitlines()
    record = json.loads(lines[3])
    tamper(record)
    lines[3] = json.dumps(record)
    export.write_text("\n".join(lines) + "\n\nnot json\n")
    with session_scope() as session:  # the target: this database without its trials
        session.execute(Trial.__table__.delete())
    refused = runner.invoke(cli, ["trials", "import", str(export)])
    assert refused.exit_code == 2, refused.output
    assert "line 4: " in refused.stderr and words in refused.stderr, refused.stderr
    assert "line 8 is not JSON" in refused.stderr
    assert done_trials() == 0  # nothing of the good lines either


def test_an_uploads_trials_are_not_imported(api, tmp_path):
    assert upload(api, "mine").status_code == 201
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == stored("mine"))).one()
        spec = TrialSpec(task=task.name, n_gold=20, weak_labeler="task", recipe="fast")
    export = tmp_path / "trials.jsonl"
    export.write_text(json.dumps({"key": spec.key(), "spec": spec.model_dump(mode="json"),
                                  "result": {"test_accuracy": 0.5}}) + "\n")
    refused = runner.invoke(cli, ["trials", "import", str(export)])
    assert refused.exit_code == 2 and "not a trial this labelmix can read" in refused.stderr  # checked first


def test_the_command_run_as_a_process_imports_into_a_fresh_database(tmp_path):
    """As a user runs it: a new process, a fresh database, a built-in task first seen there. Its
    registration leaves the labeler's build for a worker (here a Redis queue nobody reads), which the
    command must hand over, not crash on (no dispatcher was installed outside the API and workers)."""
    import os
    import subprocess
    import sys

    import redis

    broker = "redis://127.0.0.1:6379/10"  # a Redis database of this test's own, flushed around it
    queue = redis.Redis.from_url(broker)
    queue.flushdb()
    record = json.loads(open(STUDY_TRIALS).readline())
    (tmp_path / "one.jsonl").write_text(json.dumps(record) + "\n")
    env = {**os.environ, "LABELMIX_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite'}",
           "LABELMIX_BROKER_URL": broker, "LABELMIX_CACHE_DIR": str(tmp_path / "cache")}
    labelmix = [str(Path(sys.executable).parent / "labelmix")]
    for args in (["migrate"], ["trials", "import", str(tmp_path / "one.jsonl")]):
        done = subprocess.run(labelmix + args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert f"stored 1 trials (0 were done here already) of {record['spec']['task']}" in done.stdout
    # The study's trial is engine version 4's: version 6 buys other labels, so it is stored as version
    # 4's (kept, never served as current; spec.carried_forward is tested in tests/engine/test_spec.py).
    assert record["spec"]["engine_version"] == 4 < ENGINE_VERSION
    assert "reproduces exactly" not in done.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "fresh.sqlite") as db:
        (version, key, spec), = db.execute("select engine_version, key, spec from trials").fetchall()
    assert version == 4 and key == TrialSpec(**json.loads(spec)).key() == record["key"]
    queued = [json.loads(m)["headers"]["task"] for m in queue.lrange("trials", 0, -1)]
    queue.flushdb()
    assert queued == ["labelmix.build_weak_labels"]  # the labeler's build, handed to the trials workers
