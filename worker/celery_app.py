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
        # Redis redelivers unacknowledged tasks after this; it must outlast the longest trial.
        broker_transport_options={"visibility_timeout": settings.trial_time_limit_s + 3600},
        task_time_limit=settings.trial_time_limit_s,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


# What `celery -A worker.celery_app worker` runs.
celery_app = make_celery(get_settings())
