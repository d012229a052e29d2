"""Prometheus metrics of a Celery worker: the trial counters of app/trial_metrics.py, counted by the
jobs this process runs, and the depth of the Celery queues, served on its own port.

A Celery worker serves them on LABELMIX_WORKER_METRICS_PORT (worker/celery_jobs.py starts it in a thread or
solo pool's main process, in a prefork pool's child). A prefork pool of several children would have
one serve (the first to take the port) and the others count unseen: the trials workers run one child
each.
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily

from app import trial_metrics  # noqa: F401  the counters this port serves

log = logging.getLogger(__name__)


class QueueDepth:
    """Messages waiting in each Celery queue, read from the broker when scraped (never stale)."""

    def __init__(self, celery, queues: tuple[str, ...]):
        self._celery, self._queues = celery, queues

    def _family(self) -> GaugeMetricFamily:
        help_text = "Messages waiting in a Celery queue"
        return GaugeMetricFamily("labelmix_queue_messages", help_text, labels=["queue"])

    def describe(self):
        yield self._family()  # registering then asks the broker nothing

    def collect(self):
        family = self._family()
        try:
            with self._celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)  # a scrape never waits long on it
                for queue in self._queues:
                    # On Redis a queue is a list (one per priority), and kombu sums their lengths. Not
                    # passive: Redis deletes an empty list, and a passive declare of it raises.
                    depth = connection.default_channel.queue_declare(queue=queue).message_count
                    family.add_metric([queue], depth)
        except Exception:  # the broker is away: the scrape still answers, without this gauge
            log.warning("could not read the queue depths for metrics", exc_info=True)
            return
        yield family


def serve(port: int, celery, queues: tuple[str, ...]) -> None:
    """Serve this process's metrics on `port` from a thread of prometheus_client's own: it answers
    while a solo pool's only thread trains a trial. A port taken (another worker on this host) costs
    the metrics, never the worker."""
    if not port:
        return
    try:
        start_http_server(port)
    except OSError as exc:
        log.warning("no metrics: port %d: %s (LABELMIX_WORKER_METRICS_PORT: one per worker)", port, exc)
        return
    REGISTRY.register(QueueDepth(celery, queues))
    log.info("metrics on :%d/metrics", port)
