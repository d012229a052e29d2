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


def run_trial_job(trial_id: int, dispatcher) -> JobOutcome:
    from worker.engine import TrialSpec, run_trial

    me = worker_name()
    max_attempts = get_settings().max_trial_attempts
    with session_scope() as session:
        if not trials.claim(session, trial_id, me):
            return JobOutcome.skipped
        trial = session.get(Trial, trial_id)
        spec = TrialSpec(**trial.spec)
        attempts = trial.attempts
        if attempts > max_attempts:  # earlier attempts died with their workers
            trials.record_failure(session, trial_id, me, f"gave up after {max_attempts} attempts", final=True)
            task = None
        else:
            task = engine_task(session, trial.task)
    if task is not None:
        try:
            with Heartbeat(trial_id, me):
                result = run_trial(spec, task=task)
        except Exception as exc:
            final = isinstance(exc, _deterministic_errors()) or attempts >= max_attempts
            reason = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
            log.warning("trial %s attempt %s failed (final=%s): %s", trial_id, attempts, final, exc)
            with session_scope() as session:
                trials.record_failure(session, trial_id, me, reason, final=final)
            if not final:
                return JobOutcome.retry
        else:
            with session_scope() as session:
                if not trials.finish(session, trial_id, me, result.model_dump(mode="json")):
                    return JobOutcome.skipped  # reclaimed as stale meanwhile: the other run stores it
    with session_scope() as session:
        waiting = allocations.allocations_waiting_on(session, trial_id)
        status = session.get(Trial, trial_id).status
    for allocation_id in waiting:
        dispatcher.enqueue_advance(allocation_id)
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
