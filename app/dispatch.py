"""Where work goes: Celery queues when a broker is configured, else a thread in this process.

Callers enqueue only after the transaction that created the rows has committed, so a worker
never looks for a trial that is not there yet.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from . import outbox
from .config import get_settings
from .queues import CALLBACKS_QUEUE, STUDIES_QUEUE, TRIALS_QUEUE

log = logging.getLogger(__name__)

# Embedded: callbacks delivered at once; more wait their turn (each is bounded: allocations.webhooks).
CALLBACK_THREADS = 2


class InProcessDispatcher:
    """The embedded default: one background thread runs trials and study steps in order."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labelmix-embedded")
        # Callbacks wait on other people's servers: never on the thread that runs trials (allocations.webhooks).
        self._callbacks = ThreadPoolExecutor(max_workers=CALLBACK_THREADS, thread_name_prefix="labelmix-callback")

    def _submit(self, fn, *args) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception:  # a failing job must not kill the only worker thread
                log.exception("embedded job %s%r failed", fn.__name__, args)

        self._executor.submit(run)

    def enqueue_trials(self, trial_ids: list[int]) -> None:
        for trial_id in trial_ids:
            self._submit(self._run_trial, trial_id)

    def close(self) -> None:
        """Drop the jobs not started yet (the one running finishes); a dropped callback stays pending."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._callbacks.shutdown(wait=False, cancel_futures=True)

    def enqueue_callback(self, allocation_id: str) -> None:
        from app.allocations import webhooks  # see _run_trial: the services that jobs run load with them

        def deliver() -> None:
            try:
                webhooks.deliver(allocation_id)
            except Exception:  # the database went away mid-delivery: say so, keep the thread
                log.exception("callback of allocation %s failed", allocation_id)

        self._callbacks.submit(deliver)

    def _run_trial(self, trial_id: int) -> None:
        # The jobs load only in a process that runs them: an API whose workers train keeps the jobs'
        # imports and the trial counters (app/trial_metrics.py, zeros there) out of its process.
        from . import jobs

        if jobs.run_trial_job(trial_id, self) == jobs.JobOutcome.retry:
            self.enqueue_trials([trial_id])  # back of the line; attempts are bounded by the job

    def enqueue_advance(self, allocation_id: str) -> None:
        from . import jobs  # see _run_trial

        self._submit(jobs.advance_allocation_job, allocation_id, self)

    def enqueue_weak_labels(self, task_name: str) -> None:
        from . import jobs  # see _run_trial

        self._submit(jobs.build_weak_labels_job, task_name)


@lru_cache
def celery_client(broker_url: str):
    """A Celery app for sending to (and inspecting) this broker; workers use worker.celery_app."""
    from app.queues import make_celery  # imports Celery: not for the embedded service

    return make_celery(get_settings().model_copy(update={"broker_url": broker_url}))


def _note_sent(trial_ids: list[int]) -> None:
    """Stamp the trials' last send (the sweep resends a queued trial whose message is long gone)."""
    # The CLI imports this module for every command: the database and services load only when sent.
    from app.db.session import session_scope
    from app.trials import cache as trials

    try:
        with session_scope() as session:
            trials.mark_enqueued(session, trial_ids)
    except Exception:  # the stamp only paces resends: never hold back the message for it
        log.warning("could not note the send of trials %s", trial_ids, exc_info=True)


class CeleryDispatcher:
    def __init__(self, broker_url: str):
        self.celery = celery_client(broker_url)

    def enqueue_trials(self, trial_ids: list[int]) -> None:
        if trial_ids:
            _note_sent(trial_ids)  # before sending: a stamp after a lost send would delay its resend
        for trial_id in trial_ids:
            self.celery.send_task("labelmix.run_trial", args=[trial_id], queue=TRIALS_QUEUE)

    def trial_messages_waiting(self) -> int | None:
        """Messages in the broker's trials queue, not yet taken by a worker (None: cannot tell)."""
        try:
            with self.celery.connection_for_read() as connection:
                # Not passive: Redis deletes an empty list, and a passive declare of it raises.
                # Declaring is what every worker does at start-up; on Redis it creates nothing.
                return connection.default_channel.queue_declare(queue=TRIALS_QUEUE).message_count
        except Exception:
            log.warning("could not count the trials queue", exc_info=True)
            return None

    def enqueue_advance(self, allocation_id: str) -> None:
        self.celery.send_task("labelmix.advance_allocation", args=[allocation_id], queue=STUDIES_QUEUE)

    def enqueue_callback(self, allocation_id: str) -> None:
        # The control worker's queue, never the trials': a slow receiver must not idle a GPU.
        self.celery.send_task("labelmix.deliver_callback", args=[allocation_id], queue=CALLBACKS_QUEUE)

    def enqueue_weak_labels(self, task_name: str) -> None:
        # Training a labeler is a trial's kind of work: the trials workers (one per GPU) take it.
        self.celery.send_task("labelmix.build_weak_labels", args=[task_name], queue=TRIALS_QUEUE)


@lru_cache
def get_dispatcher() -> InProcessDispatcher | CeleryDispatcher:
    settings = get_settings()
    return InProcessDispatcher() if settings.embedded else CeleryDispatcher(settings.broker_url)


def _send(method: str, *args) -> None:
    getattr(get_dispatcher(), method)(*args)


outbox.install(_send)  # work services leave in a transaction goes out here once it commits
