"""Celery tasks: thin glue from the queues to the job bodies in worker/jobs.py."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready

from app.config import get_settings
from app.dispatch import CeleryDispatcher

from . import jobs
from .celery_app import celery_app

log = logging.getLogger(__name__)
dispatcher = CeleryDispatcher(get_settings().broker_url)


@celery_app.task(name="labelmix.run_trial", bind=True, max_retries=get_settings().max_trial_attempts)
def run_trial(self, trial_id: int) -> str:
    outcome = jobs.run_trial_job(trial_id, dispatcher)
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


def sweep_interval_s() -> float:
    """How often each worker sweeps: a few times within the shortest delay the sweep acts on."""
    settings = get_settings()
    return max(min(settings.stale_trial_after_s, settings.requeue_unclaimed_after_s) / 4, 1.0)


def _sweep_forever(stop: threading.Event) -> None:
    interval = sweep_interval_s()
    while True:
        try:
            jobs.recover_job(dispatcher)
        except Exception:  # the database or the broker is away: the next sweep retries
            log.warning("the recovery sweep failed", exc_info=True)
        if stop.wait(interval):
            return


@worker_ready.connect
def _start_sweeping(**_) -> None:
    # Who runs the sweep (services/recovery.py): every worker, at start-up and every few seconds,
    # from a thread of its own. The README starts plain `celery worker`s and no `celery beat`, so a
    # periodic task would never be sent; a thread needs nothing else running, keeps sweeping while a
    # solo pool's only thread trains a trial, and dies with its worker (a live one sweeps for it).
    threading.Thread(target=_sweep_forever, args=(threading.Event(),), daemon=True, name="recovery-sweep").start()
