"""The Celery tasks (Celery's word; labelmix calls them jobs, and a task is a data set): thin glue from
the queues to the job bodies in app/jobs.py."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time

from celery.signals import worker_init, worker_process_init, worker_ready

from app import jobs
from app.allocations import webhooks
from app.config import get_settings
from app.db.session import session_scope
from app.dispatch import CeleryDispatcher
from app.queues import CALLBACKS_QUEUE, STUDIES_QUEUE, TRIALS_QUEUE

from . import metrics
from .celery_app import celery_app

log = logging.getLogger(__name__)
dispatcher = CeleryDispatcher(get_settings().broker_url)


class TaskProgress:
    """A running trial's progress as its Celery task state (STARTED, with the progress in its meta),
    for Flower and `AsyncResult(id).info`: at most one write a second, and every validation."""

    def __init__(self, task):
        self._task, self._last = task, 0.0
        self._meta = {"pid": os.getpid(), "hostname": socket.gethostname()}  # what track_started stores

    def __call__(self, trial_id: int, progress: dict) -> None:
        now = time.monotonic()
        if progress.get("val_auroc") is None and now - self._last < 1.0:
            return
        self._last = now
        self._task.update_state(state="STARTED", meta={**self._meta, "trial_id": trial_id, **progress})


# ignore_result=False: the task state (STARTED, progress, outcome) is kept for result_expires.
@celery_app.task(name="labelmix.run_trial", bind=True, max_retries=get_settings().max_trial_attempts,
                 ignore_result=False)
def run_trial(self, trial_id: int) -> str:
    on_progress = TaskProgress(self) if self.request.id and not self.request.is_eager else None
    outcome = jobs.run_trial_job(trial_id, dispatcher, on_progress)
    if outcome == jobs.JobOutcome.retry:
        # Celery's own retry, with backoff; the trial row keeps the failure reason and attempts.
        raise self.retry(countdown=min(60, 5 * 2**self.request.retries))
    return outcome.value


@celery_app.task(name="labelmix.build_weak_labels")
def build_weak_labels(task_name: str) -> None:
    jobs.build_weak_labels_job(task_name)


@celery_app.task(name="labelmix.advance_allocation")
def advance_allocation(allocation_id: str) -> None:
    jobs.advance_allocation_job(allocation_id, dispatcher)


@celery_app.task(name="labelmix.deliver_callback")
def deliver_callback(allocation_id: str) -> None:
    # Retried inside (tenacity), claimed once: a redelivered message for it finds it claimed and does nothing.
    webhooks.deliver(allocation_id)


# A callback whose hand-over was lost (the broker was away when its allocation ended) is sent again
# once it has been pending this long; each worker sends each such one once (the claim keeps it to one call).
CALLBACK_RESEND_AFTER_S = 60
_callbacks_resent: set[str] = set()


def _resend_lost_callbacks() -> None:
    with session_scope() as session:
        # Left sending by a worker that died mid-delivery: pending again, and sent again (at least once).
        reclaimed = webhooks.reclaim_stale(session)
        lost = [i for i in webhooks.undelivered(session, CALLBACK_RESEND_AFTER_S) if i not in _callbacks_resent]
    for allocation_id in reclaimed:
        dispatcher.enqueue_callback(allocation_id)
    for allocation_id in lost:
        dispatcher.enqueue_callback(allocation_id)
        _callbacks_resent.add(allocation_id)


def sweep_interval_s() -> float:
    """How often each worker sweeps: a few times within the shortest delay the sweep acts on."""
    settings = get_settings()
    return max(min(settings.stale_trial_after_s, settings.requeue_unclaimed_after_s) / 4, 1.0)


def _sweep_forever(stop: threading.Event) -> None:
    interval = sweep_interval_s()
    while True:
        try:
            jobs.recover_job(dispatcher)
            _resend_lost_callbacks()
        except Exception:  # the database or the broker is away: the next sweep retries
            log.warning("the recovery sweep failed", exc_info=True)
        if stop.wait(interval):
            return


@worker_ready.connect
def _start_sweeping(**_) -> None:
    # Who runs the sweep (trials/recovery.py): every worker, at start-up and every few seconds,
    # from a thread of its own. The README starts plain `celery worker`s and no `celery beat`, so a
    # periodic task would never be sent; a thread needs nothing else running, sweeps from the pool's
    # parent while its child trains a trial, and dies with its worker (a live one sweeps for it).
    threading.Thread(target=_sweep_forever, args=(threading.Event(),), daemon=True, name="recovery-sweep").start()


def _prefork(worker) -> bool:
    pool = getattr(worker, "pool_cls", None)  # at worker_init: the --pool name, or the class
    return "prefork" in (pool if isinstance(pool, str) else getattr(pool, "__module__", ""))


@worker_init.connect
def _serve_metrics(sender=None, **_) -> None:
    # Served by the process that runs the trials (the counters are its own): a thread or solo pool's
    # main process, here; a prefork pool's child (one: the trials worker), below.
    if not _prefork(sender):
        metrics.serve(get_settings().worker_metrics_port, celery_app, (TRIALS_QUEUE, STUDIES_QUEUE, CALLBACKS_QUEUE))


@worker_init.connect
def _no_cuda_before_fork(sender=None, **_) -> None:
    # The prefork parent forks the child that trains: CUDA initialised here would be unusable there.
    torch = sys.modules.get("torch")
    if _prefork(sender) and torch is not None and torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialised in the prefork parent: its trial children could not use it")


@worker_process_init.connect
def _child_starts(**_) -> None:
    # A prefork child: connections inherited from the parent (the sweep's) are the parent's, not its own.
    from app.db.session import get_engine

    get_engine().dispose(close=False)
    metrics.serve(get_settings().worker_metrics_port, celery_app, (TRIALS_QUEUE, STUDIES_QUEUE, CALLBACKS_QUEUE))
