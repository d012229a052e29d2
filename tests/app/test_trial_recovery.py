"""The recovery sweep, the heartbeat's lease and the trial time limit, each on the real database.

The whole story with real workers, kills and restarts is tests/app/test_worker_chaos.py.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from worker.engine.spec import TrialSpec

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
TINY = dict(max_steps_per_stage=2, eval_every=2, n_test=32, max_length=32)


class RecordingDispatcher:
    """Records what a job would send; `waiting` is what the broker's trials queue would hold."""

    def __init__(self, waiting: int | None = 0) -> None:
        self.trials: list[int] = []
        self.advances: list[str] = []
        self.waiting = waiting

    def enqueue_trials(self, ids: list[int]) -> None:
        self.trials.extend(ids)

    def enqueue_advance(self, allocation_id: str) -> None:
        self.advances.append(allocation_id)

    def trial_messages_waiting(self) -> int | None:
        return self.waiting


@pytest.fixture
def settings(configure, clean_db, monkeypatch):
    """settings(**values): point the app at the emptied test database with these LABELMIX_ settings."""

    def _apply(**values) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"LABELMIX_{name.upper()}", str(value))
        configure(clean_db)

    return _apply


def make_trials(n: int, **params) -> list[int]:
    from app.db.session import session_scope
    from app.tasks.registry import register_named
    from app.trials import cache as trials

    with session_scope() as session:
        task = register_named(session, "cities")
        return [
            trials.get_or_create_trial(
                session, task, TrialSpec(task="cities", n_gold=8, seed=seed, weak_labeler="bow", params={**TINY, **params})
            ).id
            for seed in range(n)
        ]


def wait_on(allocation_trials: dict[str, list[int]], updated_ago_s: float = 3600) -> None:
    """Running allocations, last updated `updated_ago_s` ago, each with one point waiting on these trials."""
    from sqlalchemy import select, update

    from app.db.base import utcnow
    from app.db.models import Allocation, StudyPoint, StudyPointTrial, Task
    from app.db.session import session_scope

    with session_scope() as session:
        task_id = session.scalars(select(Task.id).where(Task.name == "cities")).one()
        for allocation_id, trial_ids in allocation_trials.items():
            point = StudyPoint(number=0, method="seq_sft", n_weak=0, n_gold=8)
            session.add(Allocation(id=allocation_id, task_id=task_id, request={}, status="running",
                                   study_name=f"study-{allocation_id}", points_total=1, points=[point]))
            session.flush()
            session.add_all(StudyPointTrial(point_id=point.id, trial_id=t) for t in trial_ids)
            session.flush()
            session.execute(update(Allocation).where(Allocation.id == allocation_id)
                            .values(updated_at=utcnow() - timedelta(seconds=updated_ago_s)))


def rows(sql_on, url: str, ids: list[int]) -> dict[int, tuple]:
    found = sql_on(url, "SELECT id, status, attempts, error, worker FROM trials WHERE id = ANY(%s)", (ids,))
    return {r[0]: r[1:] for r in found}


def test_the_sweep_fails_overdue_requeues_silent_and_resends_lost_trials(settings, clean_db, sql_on):
    settings(stale_trial_after_s=60, trial_time_limit_s=3600, requeue_unclaimed_after_s=300)
    from app import jobs

    overdue, silent, unclaimed, fresh = make_trials(4)
    sql_on(clean_db, "UPDATE trials SET status = 'running', worker = 'dead:1', heartbeat_at = now() - interval '2 min', "
                     "started_at = now() - interval '2 hours', attempts = 1 WHERE id = %s", (overdue,))
    sql_on(clean_db, "UPDATE trials SET status = 'running', worker = 'dead:1', heartbeat_at = now() - interval '2 min', "
                     "started_at = now() - interval '10 min', attempts = 1 WHERE id = %s", (silent,))
    sql_on(clean_db, "UPDATE trials SET enqueued_at = now() - interval '10 min' WHERE id = %s", (unclaimed,))
    sql_on(clean_db, "UPDATE trials SET enqueued_at = now() WHERE id = %s", (fresh,))
    wait_on({"waits-on-overdue": [overdue], "waits-on-silent": [silent]}, updated_ago_s=0)

    busy = RecordingDispatcher(waiting=3)  # messages still queued: the unclaimed one may be among them
    found = jobs.recover_job(busy)
    assert (found.failed, found.requeued, found.resent) == ([overdue], [silent], [])
    assert busy.trials == [silent] and busy.advances == ["waits-on-overdue"]
    state = rows(sql_on, clean_db, [overdue, silent, unclaimed, fresh])
    assert state[overdue][0] == "failed" and "exceeded the time limit of 3600 s" in state[overdue][2]
    assert state[silent][0] == "queued" and state[silent][3] is None
    assert state[unclaimed][0] == state[fresh][0] == "queued"

    idle = RecordingDispatcher(waiting=0)
    assert jobs.recover_job(idle).resent == [unclaimed]  # the queue is empty: its message is gone
    assert idle.trials == [unclaimed]
    assert jobs.recover_job(RecordingDispatcher(waiting=0)).resent == []  # sent again once a delay
    assert jobs.recover_job(RecordingDispatcher(waiting=None)).to_send == []  # cannot tell: no resend


def test_a_claim_never_takes_over_a_silent_trial_past_its_time_limit(settings, clean_db, sql_on):
    settings(stale_trial_after_s=60, trial_time_limit_s=3600)
    from app.db.session import session_scope
    from app.trials import cache as trials

    overdue, silent = make_trials(2)
    for trial_id, started in ((overdue, "2 hours"), (silent, "10 min")):
        sql_on(clean_db, "UPDATE trials SET status = 'running', worker = 'dead:1', heartbeat_at = now() - interval "
                         f"'2 min', started_at = now() - interval '{started}' WHERE id = %s", (trial_id,))
    with session_scope() as session:
        assert not trials.claim(session, overdue, "me:2")  # the sweep fails it instead
        assert trials.claim(session, silent, "me:2")


def test_a_finished_trials_message_wakes_its_allocations_and_stalled_ones_are_woken(settings, clean_db, sql_on):
    settings(requeue_unclaimed_after_s=300)
    from app import jobs

    done, running = make_trials(2)
    sql_on(clean_db, "UPDATE trials SET status = 'done' WHERE id = %s", (done,))
    sql_on(clean_db, "UPDATE trials SET status = 'running', worker = 'live:1', heartbeat_at = now(), "
                     "started_at = now() WHERE id = %s", (running,))
    wait_on({"stalled": [done], "busy": [done, running]})

    # Its runner died between storing it and waking the allocations: the next message wakes them.
    dispatcher = RecordingDispatcher()
    assert jobs.run_trial_job(done, dispatcher) == jobs.JobOutcome.skipped
    assert sorted(dispatcher.advances) == ["busy", "stalled"]
    # No message at all (lost with the broker): the sweep finds the one with nothing left to wait for.
    assert jobs.recover_job(RecordingDispatcher()).to_advance == ["stalled"]


def test_the_heartbeat_falls_silent_at_the_time_limit_and_the_sweep_fails_the_hung_trial(settings, clean_db, sql_on):
    settings(stale_trial_after_s=1, trial_time_limit_s=2)
    from app import jobs
    from app.db.session import session_scope
    from app.trials import cache as trials
    from worker.engine.training.loop import TimeLimit

    (trial_id,) = make_trials(1)
    claimed_at = time.monotonic()
    with session_scope() as session:
        assert trials.claim(session, trial_id, "hung:1")
    beat_at = lambda: sql_on(clean_db, "SELECT heartbeat_at FROM trials WHERE id = %s", (trial_id,))[0][0]  # noqa: E731
    with jobs.Heartbeat(trial_id, "hung:1", TimeLimit(2, started=claimed_at)):  # ...and never steps again
        time.sleep(1.6)
        assert jobs.recover_job(RecordingDispatcher()).to_send == []  # beating: alive
        time.sleep(0.8)  # past the limit
        last = beat_at()
        time.sleep(1.4)
        assert beat_at() == last  # it vouches no more
        found = jobs.recover_job(RecordingDispatcher())
    assert found.failed == [trial_id] and found.requeued == []
    status, attempts, error, _ = rows(sql_on, clean_db, [trial_id])[trial_id]
    assert (status, attempts) == ("failed", 1) and "exceeded the time limit of 2 s" in error


def test_a_worker_stops_a_trial_whose_claim_it_lost(settings, clean_db, sql_on):
    settings(stale_trial_after_s=2)
    from app import jobs
    from app.db.session import session_scope
    from app.trials import cache as trials
    from worker.engine.training.loop import TimeLimit

    (trial_id,) = make_trials(1)
    with session_scope() as session:
        assert trials.claim(session, trial_id, "slow:1")
    with jobs.Heartbeat(trial_id, "slow:1", TimeLimit(3600)) as heart:
        heart.vouch()  # freshly claimed: train on
        sql_on(clean_db, "UPDATE trials SET worker = 'other:2' WHERE id = %s", (trial_id,))  # taken over
        time.sleep(0.8)  # one beat (every 0.5 s here)
        with pytest.raises(jobs.ClaimLost):
            heart.vouch()


def test_a_trial_past_its_time_limit_fails_for_good_with_the_reason(settings, clean_db, sql_on):
    settings(trial_time_limit_s=1)
    from app import jobs

    (trial_id,) = make_trials(1, max_steps_per_stage=10_000, eval_every=10_000)
    dispatcher = RecordingDispatcher()
    assert jobs.run_trial_job(trial_id, dispatcher) == jobs.JobOutcome.failed
    status, attempts, error, _ = rows(sql_on, clean_db, [trial_id])[trial_id]
    assert (status, attempts) == ("failed", 1)  # final: not retried
    assert "TimeLimitExceeded: exceeded the time limit of 1 s" in error


def test_the_migration_adding_enqueued_at_downgrades_and_upgrades(empty_pg_url, migrate, configure, sql_on):
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'trials' AND column_name = 'enqueued_at'"
    migrate(empty_pg_url)
    assert sql_on(empty_pg_url, columns) == [("enqueued_at",)]
    configure(empty_pg_url)
    command.downgrade(Config(str(ALEMBIC_INI)), "0004")
    assert sql_on(empty_pg_url, columns) == []
    migrate(empty_pg_url)
    assert sql_on(empty_pg_url, columns) == [("enqueued_at",)]

