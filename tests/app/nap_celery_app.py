"""A Celery app configured exactly as labelmix's (app/queues.py), with one task that only sleeps.

For test_broker_reconnect: a task long enough to still be running when the broker restarts.
It includes none of labelmix's tasks, so its worker needs no database and starts no sweep.
"""

from __future__ import annotations

import time

from app.config import Settings
from app.queues import make_celery

app = make_celery(Settings())
app.conf.include = ()
app.conf.task_default_queue = "naps"


@app.task(name="nap")
def nap(seconds: float) -> None:
    time.sleep(seconds)
    print(f"woke after {seconds} s", flush=True)
