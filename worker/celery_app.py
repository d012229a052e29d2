"""Celery for distributed runs: trials on the `trials` queue (one worker per GPU), study
bookkeeping on the `studies` queue. Queue names and the configuration: app/queues.py.

Start a GPU worker:   CUDA_VISIBLE_DEVICES=0 celery -A worker.celery_app worker -Q trials --pool prefork --concurrency 1
Start a study worker: celery -A worker.celery_app worker -Q studies --pool threads -c 4

The trials pool is prefork with one child, because it is the one pool that keeps every promise:
- Heartbeats: the parent process only consumes, acknowledges and answers; the child trains. So the
  worker's heartbeat, its events and `celery inspect ping` carry on while a trial trains, and
  Flower shows the worker Online and the task Started. `--pool solo` runs the trial in the thread
  that would send them: the worker looked Offline for the whole of a trial.
- An enforced time limit: the parent kills a child past task_time_limit (solo and threads ignore
  it). The engine's own limit (trial_time_limit_s, checked between steps) acts first and stores
  the reason; the parent's kill is the backstop for a trial hung inside a step.
- One trial at a time per GPU: concurrency 1 with prefetch 1, one worker per GPU.
- acks late + reject on worker lost: a child that dies mid-trial gives its message back at once.
- Models stay resident: the child lives across trials (no max_tasks_per_child), so it keeps the
  base models it loaded (worker/engine/resident.py); only a killed child starts cold.
- No CUDA before the fork: the parent never imports the engine's training code or touches the
  GPU (it runs the recovery sweep, which does not import torch); the child initialises CUDA at its
  first trial and serves the worker's metrics, whose trial counters live there. worker/celery_jobs.py
  checks this at start-up.
"""

from __future__ import annotations

from app.config import get_settings
from app.queues import make_celery

__all__ = ["celery_app", "make_celery"]

# What `celery -A worker.celery_app worker` runs.
celery_app = make_celery(get_settings())
