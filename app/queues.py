"""The Celery side both ends share: queue names and the Celery app's configuration.

The API (app/dispatch.py) sends to these queues and the workers (worker/celery_app.py) consume
them; both import from here and this imports neither, so neither imports the other. Building the
app imports no task code: `include` names worker.celery_jobs for a worker to import when it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Settings

if TYPE_CHECKING:
    from celery import Celery

TRIALS_QUEUE = "trials"
STUDIES_QUEUE = "studies"
# Allocations' callbacks: a queue of their own, for a worker of their own (a thread pool). On the
# studies queue, four trickling receivers held all four threads that advance every team's allocations.
CALLBACKS_QUEUE = "callbacks"

# How long a task's state (STARTED with a running trial's progress, then its outcome) stays in the
# result backend. It is for Flower and `celery result`; the trial row in the database is the record.
RESULT_EXPIRES_S = 24 * 3600


def make_celery(settings: Settings) -> Celery:
    from celery import Celery  # here: the embedded service imports the queue names, never Celery

    # The result backend is the broker's Redis (a trial's progress goes there through update_state);
    # a broker other than Redis keeps no task state.
    backend = settings.broker_url if settings.broker_url and settings.broker_url.startswith("redis") else None
    app = Celery("labelmix", broker=settings.broker_url, backend=backend, include=["worker.celery_jobs"])
    app.conf.update(
        task_routes={
            "labelmix.run_trial": {"queue": TRIALS_QUEUE},
            "labelmix.advance_allocation": {"queue": STUDIES_QUEUE},
            "labelmix.deliver_callback": {"queue": CALLBACKS_QUEUE},
        },
        task_default_queue=TRIALS_QUEUE,
        # A trial is acknowledged only once it has finished, and given back if its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A worker takes one trial at a time: a second prefetched one would wait behind a long run.
        worker_prefetch_multiplier=1,
        # The pool, the time limits and the visibility timeout, chosen together (the pool and why:
        # worker/celery_app.py):
        # - Trials workers run a prefork pool of one child. The engine stops a trial between steps
        #   past trial_time_limit_s (stored as the trial's failure) and its heartbeat stops there;
        #   the pool's parent enforces task_time_limit, set one stale period later, by killing a
        #   child hung inside a step; the sweep then fails the silent trial for good with the reason.
        # - Redis hands out an unacknowledged message again after the visibility timeout. Sized to
        #   outlast the longest trial (6 h), it hid the message of a worker killed before its claim
        #   for 7 hours. The trial row guards against running twice (a claim is one conditional
        #   UPDATE; a message for a trial that a live worker holds is skipped and acknowledged), so
        #   minutes are safe, and they bound how long such a message hides. The DB sweep resends sooner
        #   (requeue_unclaimed_after_s) and also covers messages Redis lost. A long trial's message
        #   may come round again every timeout: a claim query skips it.
        # - acks_late + reject_on_worker_lost give a dead child's message back at once; a killed
        #   worker's (parent and child: the child dies with its parent, PDEATHSIG) after the
        #   visibility timeout, or sooner by the sweep.
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # Idle workers look for messages past the timeout every 10 s (kombu's default scans
            # every 100 s, much of a timeout of minutes).
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        },
        task_time_limit=settings.trial_time_limit_s + settings.stale_trial_after_s,
        # Flower shows a trial Started (and its progress, worker/celery_jobs.py) while it trains: task
        # events on, and the started state stored. Only run_trial keeps a result (its task state).
        task_track_started=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_ignore_result=True,
        result_expires=RESULT_EXPIRES_S,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if settings.broker_url and settings.broker_url.startswith("redis://"):
        # Kombu's, except that a late acknowledgement after a reconnect no longer stops the worker.
        # Named, not imported: kombu loads it only where a connection is made.
        app.conf.broker_transport = "app.redis_transport:Transport"
    return app
