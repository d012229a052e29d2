"""The bodies of the background jobs, shared by Celery tasks and the embedded in-process runner.

run_trial_job: claim a trial, run the engine, store the result, wake the allocations waiting on it.
advance_allocation_job: move an allocation's study and enqueue the trials it now needs.
build_weak_labels_job: train a task's default weak labeler and describe its labels on the task.
recover_job: the periodic sweep for trials and allocations whose messages or workers were lost.

What a trial may rely on: the row is the truth and a message only a hint. A claim is one
conditional UPDATE, so any number of messages for a trial (redelivered, resent) train it once; a
claimed trial holds a lease, its heartbeat, which the worker stops trusting before the sweep could
take the trial back, so no two workers train it at once; every attempt ends within the time limit
(between steps here, or by the heartbeat falling silent), and attempts are bounded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from app.allocations import lifecycle as allocations
from app.tasks import removal as task_removal
from app.tasks.registry import describe_weak_labels, engine_task
from app.trials import cache as trials
from app.trials import progress as trial_progress
from app.trials import recovery
from worker.engine import AllocationError, ModelSpecError, TrialSpec, UnknownTaskError, WeakLabelerError
from worker.engine.spec import ENGINE_VERSION
from worker.engine.weak_labels import weak_labels

from . import trial_metrics as metrics
from .config import get_settings
from .db.models import Task, Trial
from .db.session import session_scope

log = logging.getLogger(__name__)


class JobOutcome(StrEnum):
    done = "done"
    failed = "failed"
    retry = "retry"  # a transient failure: the caller runs it again (Celery: its own retry)
    skipped = "skipped"  # already done, or another live worker has it


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ClaimLost(RuntimeError):
    """The trial is no longer this worker's: the sweep took it back, or another worker holds it."""


class Heartbeat:
    """Refreshes a claimed trial's heartbeat from a thread: this worker's lease on the trial.

    The sweep (or a redelivered message) takes a trial back once its heartbeat is older than
    stale_trial_after_s, so a silent trial means a dead worker. Hence:
    - the beats stop at the trial's time limit: a trial hung inside a step, where the check between
      steps cannot fire, falls silent and the sweep fails it for good (trials.fail_overdue);
    - `vouch`, run between training steps, ends the trial (ClaimLost) once a beat finds the row is
      no longer this worker's, and holds training while the beats fail (the database is away) past
      the time the lease can be trusted: by the time the sweep may take the trial back, this worker
      has stopped stepping, so two workers never train one trial at once.
    - `note`, the engine's progress callback, keeps the latest event; each beat stores it on the row
      (trials/progress.py), and `on_progress` (Celery's task state) hears of it at once.
    """

    def __init__(self, trial_id: int, worker: str, limit, on_progress=None):
        stale_after = get_settings().stale_trial_after_s
        self._trial_id, self._worker, self._limit = trial_id, worker, limit  # limit: training.loop.TimeLimit
        self._on_progress = on_progress  # (trial_id, progress row) -> None
        self._progress: dict | None = None  # the latest event, as the row stores it
        self._interval = max(stale_after / 4, 0.5)
        # One beat short of the sweep's threshold: a step begun within the lease ends before it expires.
        self._trust_s = stale_after - self._interval
        self._stored_at = limit.started  # monotonic time just before the last beat known stored (the claim)
        self._lost = False
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def _beat(self) -> None:
        while time.monotonic() <= self._limit.deadline:  # past it: still running means hung
            sent = time.monotonic()  # before the UPDATE: the stored time is no older than this
            try:
                with session_scope() as session:
                    ours = trials.heartbeat(session, self._trial_id, self._worker, self._progress)
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for trial %s failed", self._trial_id, exc_info=True)
            else:
                with self._changed:
                    if ours:
                        self._stored_at = sent
                    else:
                        self._lost = True
                    self._changed.notify_all()
                if not ours:
                    return
            if self._stop.wait(self._interval):
                return

    def note(self, event) -> None:
        """The engine's progress callback (a worker.engine.ProgressEvent)."""
        self._progress = row = trial_progress.as_row(event.stage, event.step, event.total_steps, event.val_auroc)
        if self._on_progress is not None:
            try:
                self._on_progress(self._trial_id, row)
            except Exception:  # progress is for show: it never stops a trial
                log.warning("could not report the progress of trial %s", self._trial_id, exc_info=True)

    def vouch(self) -> None:
        """Return while this worker may keep training the trial; raise when it must stop."""
        with self._changed:
            while not self._lost and time.monotonic() - self._stored_at > self._trust_s:
                self._limit()  # waiting for the database still counts against the time limit
                self._changed.wait(self._interval)
            if self._lost:
                raise ClaimLost(f"trial {self._trial_id} is no longer held by {self._worker}")

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._progress is not None:  # the last event since the last beat (kept on the row)
            try:
                with session_scope() as session:
                    trials.store_progress(session, self._trial_id, self._worker, self._progress)
            except Exception:
                log.warning("could not store the progress of trial %s", self._trial_id, exc_info=True)


def _deterministic_errors() -> tuple[type[Exception], ...]:
    # Errors that a retry cannot fix: fail at once instead of burning attempts.
    from worker.engine.training.loop import TimeLimitExceeded  # loads torch: see _run_claimed

    return (AllocationError, ModelSpecError, UnknownTaskError, WeakLabelerError, TimeLimitExceeded)


@dataclass
class Claimed:
    """A trial this worker holds: what to run, or why it will not run."""

    trial_id: int
    spec: object  # worker.engine.TrialSpec
    attempts: int
    task: object | None  # the engine's task; None when the trial is given up on
    limit: object  # worker.engine.training.loop.TimeLimit, from just before the claim


def _claim_with_companions(session, trial_id: int, me: str, max_attempts: int) -> list[int]:
    """Claim the trial and queued trials to train beside it on the same base (group size from the
    engine); [] when it is not to be had. Claims only: the claims' heartbeat stamps age from here
    until their heartbeats start, after this transaction commits, so it must commit at once.
    """
    # The engine's training modules load torch: imported by a process when it trains (the studies
    # worker imports these jobs too and never trains).
    from worker.engine.group import GROUPABLE, group_size
    from worker.engine.runtime import pick_runtime

    size = group_size(pick_runtime())  # first: it may import torch, seconds the claim must not wait
    if not trials.claim(session, trial_id, me):
        return []
    trial = session.get(Trial, trial_id)
    if trial.attempts > max_attempts or trial.method not in GROUPABLE:
        return [trial_id]
    companions = trials.queued_companions(session, trial, frozenset(m.value for m in GROUPABLE), size - 1)
    return [trial_id, *(i for i in companions if trials.claim(session, i, me))]


def _prepare(session, trial_id: int, me: str, max_attempts: int, limit) -> Claimed:
    """A claimed trial with what it runs on (its engine task), or given up on after too many attempts."""
    trial = session.get(Trial, trial_id)
    log.info("trial %s claimed by %s (attempt %d)", trial_id, me, trial.attempts)

    def give_up(reason: str, spec=None) -> Claimed:
        trials.record_failure(session, trial_id, me, reason, final=True)
        log.info("trial %s failed by %s: %s", trial_id, me, reason)
        return Claimed(trial_id, spec, trial.attempts, None, limit)

    if trial.engine_version != ENGINE_VERSION:  # queued across an upgrade: this engine would train another trial
        return give_up(f"queued for engine version {trial.engine_version}; this worker runs version "
                       f"{ENGINE_VERSION}: ask for the point again to train it on the current engine")
    spec = TrialSpec(**trial.spec)
    if trial.attempts > max_attempts:  # earlier attempts died with their workers
        return give_up(f"gave up after {max_attempts} attempts", spec)
    return Claimed(trial_id, spec, trial.attempts, engine_task(session, trial.task), limit)


def _store(claimed: Claimed, me: str, result=None, error: Exception | None = None) -> JobOutcome | None:
    """Store a trial's result or failure; returns retry when the failure is worth another attempt."""
    max_attempts = get_settings().max_trial_attempts
    if error is not None:
        final = isinstance(error, _deterministic_errors()) or claimed.attempts >= max_attempts
        reason = f"{type(error).__name__}: {error}\n{''.join(traceback.format_exception(error, limit=5))}"
        log.warning("trial %s attempt %s failed (final=%s): %s", claimed.trial_id, claimed.attempts, final, error)
        with session_scope() as session:
            trials.record_failure(session, claimed.trial_id, me, reason, final=final)
        log.info("trial %s failed by %s", claimed.trial_id, me)
        metrics.trial_ended("failed", claimed.limit.started)
        return None if final else JobOutcome.retry
    with session_scope() as session:
        if not trials.finish(session, claimed.trial_id, me, result.model_dump(mode="json")):
            log.info("trial %s abandoned by %s: reclaimed meanwhile", claimed.trial_id, me)
            return JobOutcome.skipped  # reclaimed as stale meanwhile: the other run stores it
    log.info("trial %s stored by %s", claimed.trial_id, me)
    metrics.trial_ended("done", claimed.limit.started)
    return None


def _run_claimed(group: list[Claimed], me: str, hearts: dict[int, Heartbeat]) -> dict[int, JobOutcome | None]:
    """Run the claimed trials (together when there are several) and store each one's outcome.

    Each trial trains under its time limit and its heartbeat's lease, checked between steps.
    """
    # The engine's training modules load torch: imported by a process when it trains (the studies
    # worker imports these jobs too and never trains).
    from worker.engine import run_trial
    from worker.engine.group import run_group
    from worker.engine.training.loop import TimeLimitExceeded, checked_between_steps

    if len(group) > 1:
        try:
            with checked_between_steps(*(c.limit for c in group), *(hearts[c.trial_id].vouch for c in group)):
                results = run_group([c.spec for c in group], task=group[0].task,
                                    progress=[hearts[c.trial_id].note for c in group])
            return {c.trial_id: _store(c, me, result) for c, result in zip(group, results)}
        except TimeLimitExceeded as exc:  # claimed together, so their limits fall together
            return {c.trial_id: _store(c, me, error=exc) for c in group}
        except Exception:  # one bad trial (or lost claim) must not fail the others: run each alone
            log.warning("a group of %d trials failed; running them one at a time", len(group), exc_info=True)
    outcomes = {}
    for claimed in group:
        try:
            with checked_between_steps(claimed.limit, hearts[claimed.trial_id].vouch):
                result = run_trial(claimed.spec, hearts[claimed.trial_id].note, task=claimed.task)
        except ClaimLost:  # the row names who runs it now: store nothing
            log.info("trial %s abandoned by %s: its claim was lost", claimed.trial_id, me)
            outcomes[claimed.trial_id] = JobOutcome.skipped
        except Exception as exc:
            outcomes[claimed.trial_id] = _store(claimed, me, error=exc)
        else:
            outcomes[claimed.trial_id] = _store(claimed, me, result)
    return outcomes


def _wake(dispatcher, allocation_ids) -> None:
    for allocation_id in sorted(set(allocation_ids)):
        dispatcher.enqueue_advance(allocation_id)


def run_trial_job(trial_id: int, dispatcher, on_progress=None) -> JobOutcome:
    """Run one trial, and beside it any queued trials that can share its base model (a group).

    on_progress(trial_id, progress row), when given, hears each progress event of the trials run.
    """
    from worker.engine.training.loop import TimeLimit  # loads torch: see _run_claimed

    me = worker_name()
    max_attempts = get_settings().max_trial_attempts
    # Before the claim: its lease and its time limit count from here.
    limit = TimeLimit(get_settings().trial_time_limit_s, started=time.monotonic())
    with session_scope() as session:
        ids = _claim_with_companions(session, trial_id, me, max_attempts)
        if not ids:
            finished = (trial := session.get(Trial, trial_id)) is not None and trial.status in trials.FINISHED
            # The run that finished it may have died before waking its allocations (advancing is idempotent).
            waiting = allocations.allocations_waiting_on(session, trial_id) if finished else []
    if not ids:
        _wake(dispatcher, waiting)
        return JobOutcome.skipped
    with ExitStack() as beating:
        # Committed: beat from now on, before building the tasks (seconds) lets the claims look stale.
        hearts = {i: beating.enter_context(Heartbeat(i, me, limit, on_progress)) for i in ids}
        with session_scope() as session:
            claimed = [_prepare(session, i, me, max_attempts, limit) for i in ids]
        group = [c for c in claimed if c.task is not None]  # the rest were given up on when claimed
        metrics.TRIALS_STARTED.inc(len(group))
        outcomes = _run_claimed(group, me, hearts) if group else {}
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
    _wake(dispatcher, waiting)
    if outcomes.get(trial_id) == JobOutcome.skipped:
        return JobOutcome.skipped
    return JobOutcome.done if status == "done" else JobOutcome.failed


def advance_allocation_job(allocation_id: str, dispatcher) -> None:
    with session_scope() as session:
        to_run = allocations.advance(session, allocation_id)
    dispatcher.enqueue_trials(to_run)  # after commit: the worker must find the rows


def build_weak_labels_job(task_name: str) -> None:
    """Train the task's default weak labeler (cached for every later trial) and describe its labels."""
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == task_name)).one_or_none()
        if task is None:  # deleted before its labels were built
            return
        task_id, engine = task.id, engine_task(session, task)
    labels = weak_labels(engine)  # minutes: outside any transaction
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == task_name)).one_or_none()
        if task is None:  # deleted while they were built: keep nothing of it
            task_removal.forget_weak_labels(task_name)
            return
        if task.id != task_id:  # deleted and uploaded again meanwhile: these describe the old rows
            return  # (the new upload queued a build of its own)
        describe_weak_labels(task, labels)


def recover_job(dispatcher) -> recovery.Recovered:
    """One sweep (trials/recovery.py): fail, requeue or resend stranded trials, wake stalled allocations."""
    waiting = dispatcher.trial_messages_waiting()
    with session_scope() as session:
        found = recovery.sweep(session, trials_queue_empty=waiting == 0)
    if found.failed:
        log.warning("failed %d trial(s) silent past the time limit: %s", len(found.failed), found.failed)
    if found.requeued:
        log.warning("requeued %d trial(s) whose worker went silent: %s", len(found.requeued), found.requeued)
    if found.resent:
        log.warning("resent %d queued trial(s) whose message was never claimed: %s", len(found.resent), found.resent)
    if found.to_advance:
        log.info("waking %d allocation(s) no message was coming for: %s", len(found.to_advance), found.to_advance)
    dispatcher.enqueue_trials(found.to_send)  # after commit: the worker must find the rows
    _wake(dispatcher, found.to_advance)
    return found
