"""A worker outlives a broker restart that lands while it runs a task (acks_late).

The task ends after the worker has reconnected, and is acknowledged on its old, closed channel.
Kombu's own Redis transport raised AttributeError there and the worker shut down ("Unrecoverable
error"); CI's chaos test lost its studies worker, and every allocation with it, this way.
app/redis_transport.py turns it into a connection error: logged, and the worker goes on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_celery_worker import wait_for
from test_dashboard import stop
from test_worker_chaos import ThrowawayRedis

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_a_late_ack_after_a_broker_restart_does_not_stop_the_worker(tmp_path):
    redis_server = ThrowawayRedis(tmp_path)
    env = {**os.environ, "LABELMIX_BROKER_URL": redis_server.url, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)])}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "nap_celery_app", "worker", "-Q", "naps", "--pool", "threads",
         "-c", "2", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )

    def send(seconds: float) -> None:
        subprocess.run([sys.executable, "-c", f"import nap_celery_app as m; m.nap.delay({seconds})"],
                       env=env, check=True, timeout=60)

    def logged(text: str):
        return lambda: text in log.read_text(errors="replace")

    try:
        wait_for(logged("ready."), 60, "the worker to start", log.read_text)
        send(6)
        wait_for(logged("Task nap["), 30, "the worker to take the long task", log.read_text)
        redis_server.restart()  # while the task sleeps: the worker reconnects before it ends
        wait_for(logged("woke after 6"), 60, "the long task to end", log.read_text)
        time.sleep(2)  # its acknowledgement runs on the worker's loop right after
        send(0)
        # Fails fast when the worker has died (it did, on kombu's own transport).
        wait_for(lambda: worker.poll() is not None or logged("woke after 0")(), 60,
                 "a task sent after the restart to run", log.read_text)
        assert worker.poll() is None, log.read_text()
        text = log.read_text(errors="replace")
        assert "Unrecoverable error" not in text
        assert "Couldn't ack" in text  # the late acknowledgement was refused, not fatal
        assert "app.redis_transport:Transport" in text  # the worker ran labelmix's transport
    finally:
        stop(worker)
        redis_server.stop()
