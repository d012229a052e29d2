"""The bodies of the background jobs, shared by Celery tasks and the embedded in-process runner.

run_trial_job: claim a trial, run the engine, store the result, wake the allocations waiting on it.
advance_allocation_job: move an allocation's study and enqueue the trials it now needs.
build_weak_labels_job: train a task's default weak labeler and describe its labels on the task.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from app.config import get_settings
from app.db.models import Task, Trial
from app.db.session import session_scope
from app.services import allocations, trials
from app.services.tasks import describe_weak_labels, engine_task

log = logging.getLogger(__name__)


class JobOutcome(StrEnum):
    done = "done"
    failed = "failed"
    retry = "retry"  # a transient failure: the caller runs it again (Celery: its own retry)
    skipped = "skipped"  # already done, or another live worker has it


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Refreshes the trial's heartbeat from a thread, so a silent trial means a dead worker."""

    def __init__(self, trial_id: int, worker: str):
        self._trial_id, self._worker = trial_id, worker
        self._stop = threading.Event()
        self._interval = max(get_settings().stale_trial_after_s / 4, 0.5)
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with session_scope() as session:
                    trials.heartbeat(session, self._trial_id, self._worker)
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for trial %s failed", self._trial_id, exc_info=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _deterministic_errors() -> tuple[type[Exception], ...]:
    # Errors that a retry cannot fix: fail at once instead of burning attempts.
    from worker.engine import AllocationError, ModelSpecError, UnknownTaskError, WeakLabelerError

    return (AllocationError, ModelSpecError, UnknownTaskError, WeakLabelerError)


@dataclass
class Claimed:
    """A trial this worker holds: what to run, or why it will not run."""

    trial_id: int
    spec: object  # worker.engine.TrialSpec
    attempts: int
    task: object | None  # the engine's task; None when the trial is given up on


def _claim(session, trial_id: int, me: str, max_attempts: int) -> Claimed:
    from worker.engine import TrialSpec

    trial = session.get(Trial, trial_id)
    spec = TrialSpec(**trial.spec)
    if trial.attempts > max_attempts:  # earlier attempts died with their workers
        trials.record_failure(session, trial_id, me, f"gave up after {max_attempts} attempts", final=True)
        return Claimed(trial_id, spec, trial.attempts, None)
    return Claimed(trial_id, spec, trial.attempts, engine_task(session, trial.task))


def _companions(session, trial_id: int, me: str, max_attempts: int) -> list[Claimed]:
    """Queued trials to train beside this one on the same base, claimed (group size from the engine)."""
    from worker.engine.group import GROUPABLE, group_size
    from worker.engine.runtime import pick_runtime

    trial = session.get(Trial, trial_id)
    size = group_size(pick_runtime())
    if size <= 1 or trial.method not in GROUPABLE:
        return []
    ids = trials.queued_companions(session, trial, frozenset(m.value for m in GROUPABLE), size - 1)
    return [_claim(session, i, me, max_attempts) for i in ids if trials.claim(session, i, me)]


def _store(claimed: Claimed, me: str, result=None, error: Exception | None = None) -> JobOutcome | None:
    """Store a trial's result or failure; returns retry when the failure is worth another attempt."""
    max_attempts = get_settings().max_trial_attempts
    if error is not None:
        final = isinstance(error, _deterministic_errors()) or claimed.attempts >= max_attempts
        reason = f"{type(error).__name__}: {error}\n{''.join(traceback.format_exception(error, limit=5))}"
        log.warning("trial %s attempt %s failed (final=%s): %s", claimed.trial_id, claimed.attempts, final, error)
        with session_scope() as session:
            trials.record_failure(session, claimed.trial_id, me, reason, final=final)
        return None if final else JobOutcome.retry
    with session_scope() as session:
        if not trials.finish(session, claimed.trial_id, me, result.model_dump(mode="json")):
            return JobOutcome.skipped  # reclaimed as stale meanwhile: the other run stores it
    return None


def _run_claimed(group: list[Claimed], me: str) -> dict[int, JobOutcome | None]:
    """Run the claimed trials (together when there are several) and store each one's outcome."""
    from worker.engine import run_trial
    from worker.engine.group import run_group

    with ExitStack() as beating:
        for claimed in group:
            beating.enter_context(Heartbeat(claimed.trial_id, me))
        if len(group) > 1:
            try:
                results = run_group([c.spec for c in group], task=group[0].task)
                return {c.trial_id: _store(c, me, result) for c, result in zip(group, results)}
            except Exception:  # one bad trial must not fail the others: run each alone
                log.warning("a group of %d trials failed; running them one at a time", len(group), exc_info=True)
        outcomes = {}
        for claimed in group:
            try:
                result = run_trial(claimed.spec, task=claimed.task)
            except Exception as exc:
                outcomes[claimed.trial_id] = _store(claimed, me, error=exc)
            else:
                outcomes[claimed.trial_id] = _store(claimed, me, result)
        return outcomes


def run_trial_job(trial_id: int, dispatcher) -> JobOutcome:
    """Run one trial, and beside it any queued trials that can share its base model (a group)."""
    me = worker_name()
    max_attempts = get_settings().max_trial_attempts
    with session_scope() as session:
        if not trials.claim(session, trial_id, me):
            return JobOutcome.skipped
        primary = _claim(session, trial_id, me, max_attempts)
        claimed = [primary, *_companions(session, trial_id, me, max_attempts)] if primary.task is not None else [primary]
    group = [c for c in claimed if c.task is not None]  # the rest were given up on when claimed
    outcomes = _run_claimed(group, me) if group else {}
    for companion in group[1:]:
        if outcomes.get(companion.trial_id) == JobOutcome.retry:
            dispatcher.enqueue_trials([companion.trial_id])  # its own message was skipped: send another
    if outcomes.get(trial_id) == JobOutcome.retry:
        return JobOutcome.retry  # Celery's retry (or the embedded queue) runs it again
    # Trials that reached their end (done, failed, or given up on) may be what an allocation awaits.
    ended = [c.trial_id for c in claimed if outcomes.get(c.trial_id) != JobOutcome.retry]
    with session_scope() as session:
        waiting = {a for i in ended for a in allocations.allocations_waiting_on(session, i)}
        status = session.get(Trial, trial_id).status
    for allocation_id in sorted(waiting):
        dispatcher.enqueue_advance(allocation_id)
    if outcomes.get(trial_id) == JobOutcome.skipped:
        return JobOutcome.skipped
    return JobOutcome.done if status == "done" else JobOutcome.failed


def advance_allocation_job(allocation_id: str, dispatcher) -> None:
    with session_scope() as session:
        to_run = allocations.advance(session, allocation_id)
    dispatcher.enqueue_trials(to_run)  # after commit: the worker must find the rows


def build_weak_labels_job(task_name: str) -> None:
    """Train the task's default weak labeler (cached for every later trial) and describe its labels."""
    from worker.engine.weak_labels import weak_labels

    with session_scope() as session:
        engine = engine_task(session, session.scalars(select(Task).where(Task.name == task_name)).one())
    labels = weak_labels(engine)  # minutes: outside any transaction
    with session_scope() as session:
        describe_weak_labels(session.scalars(select(Task).where(Task.name == task_name)).one(), labels)


def requeue_stale_job(dispatcher) -> list[int]:
    with session_scope() as session:
        stale = trials.requeue_stale(session)
    if stale:
        log.warning("requeued %d trial(s) whose worker went silent: %s", len(stale), stale)
        dispatcher.enqueue_trials(stale)
    return stale
