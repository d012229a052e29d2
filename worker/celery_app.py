"""Celery for distributed runs: trials on the `trials` queue (one solo worker per GPU), study
bookkeeping on the `studies` queue.

Start a GPU worker:   CUDA_VISIBLE_DEVICES=0 celery -A worker.celery_app worker -Q trials --pool solo
Start a study worker: celery -A worker.celery_app worker -Q studies --pool threads -c 4
"""

from __future__ import annotations

from celery import Celery

from app.config import Settings, get_settings
from app.dispatch import STUDIES_QUEUE, TRIALS_QUEUE


def make_celery(settings: Settings) -> Celery:
    app = Celery("labelmix", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        task_routes={
            "labelmix.run_trial": {"queue": TRIALS_QUEUE},
            "labelmix.advance_allocation": {"queue": STUDIES_QUEUE},
        },
        task_default_queue=TRIALS_QUEUE,
        # A trial is acknowledged only once it has finished, and given back if its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A worker takes one trial at a time: a second prefetched one would wait behind a long run.
        worker_prefetch_multiplier=1,
        # The pool, the time limit and the visibility timeout, chosen together:
        # - Trials workers run `--pool solo`: one process owns the GPU and keeps its models resident
        #   (a forked child cannot re-initialise CUDA). Solo ignores task_time_limit, so the limit is
        #   the worker's own: the engine stops a trial between steps past trial_time_limit_s, and its
        #   heartbeat stops there, so a trial hung inside a step is failed by the sweep. Only a prefork
        #   pool enforces task_time_limit: it stays, as a backstop set after those two have acted.
        # - Redis hands out an unacknowledged message again after the visibility timeout. Sized to
        #   outlast the longest trial (6 h), it hid the message of a worker killed before its claim
        #   for 7 hours. The trial row guards against running twice (a claim is one conditional
        #   UPDATE; a message for a trial that a live worker holds is skipped and acknowledged), so
        #   minutes are safe, and they bound how long such a message hides. The DB sweep resends sooner
        #   (requeue_unclaimed_after_s) and also covers messages Redis lost. A long trial's message
        #   may come round again every timeout: a claim query skips it.
        # - acks_late + reject_on_worker_lost still give a dead worker's message back (at once for a
        #   prefork child, after the visibility timeout for a killed solo worker).
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # Idle workers look for messages past the timeout every 10 s (kombu's default scans
            # every 100 s, much of a timeout of minutes).
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        },
        task_time_limit=settings.trial_time_limit_s + settings.stale_trial_after_s,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


# What `celery -A worker.celery_app worker` runs.
celery_app = make_celery(get_settings())
