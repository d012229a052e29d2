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


def _reap_stale_trials_forever(stop: threading.Event) -> None:
    interval = max(get_settings().stale_trial_after_s / 2, 1)
    while True:
        try:
            jobs.requeue_stale_job(dispatcher)
        except Exception:
            log.warning("looking for stale trials failed", exc_info=True)
        if stop.wait(interval):
            return


@worker_ready.connect
def _start_reaper(**_) -> None:
    # A killed worker cannot report its trial; live workers find such trials by their silence.
    threading.Thread(target=_reap_stale_trials_forever, args=(threading.Event(),), daemon=True).start()
