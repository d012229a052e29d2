"""Prometheus counters of trial attempts: started, stored done, stored failed, and their seconds.

They live in whichever process runs trials (app/jobs.py counts them): a Celery trials worker serves
them on its metrics port (worker/metrics.py), the embedded API on its own /metrics (app/api/metrics.py).
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

TRIALS_STARTED = Counter("labelmix_trials_started", "Trial attempts this process began training")
TRIALS_FINISHED = Counter("labelmix_trials_finished", "Trial attempts stored done")
TRIALS_FAILED = Counter("labelmix_trials_failed", "Trial attempts stored failed (some are retried)")
TRIAL_SECONDS = Histogram(
    "labelmix_trial_seconds",
    "Seconds from a trial's claim to its stored outcome (trials trained together share theirs)",
    ["outcome"],
    # From a tiny CPU trial to the 6 h default time limit.
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600),
)


def trial_ended(outcome: str, claimed_at: float) -> None:
    """Count one attempt's stored outcome, `done` or `failed`; claimed_at is time.monotonic()."""
    (TRIALS_FINISHED if outcome == "done" else TRIALS_FAILED).inc()
    TRIAL_SECONDS.labels(outcome).observe(time.monotonic() - claimed_at)
