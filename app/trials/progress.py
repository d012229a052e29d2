"""How far running trials have got: the progress a worker writes to the trial row with each
heartbeat (app/jobs.py), as the API shows it.

A worker keeps the engine's latest progress event in memory and stores it with the next beat, so
progress costs no writes beyond the heartbeat's (it is at most one beat interval old).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from app.db.models import Trial, TrialStatus


def as_row(stage: str, step: int, total_steps: int, val_auroc: float | None) -> dict:
    """What trials.progress holds: the engine's ProgressEvent, stamped with when it happened."""
    return {
        "stage": stage,
        "step": step,
        "total_steps": total_steps,
        "val_auroc": val_auroc,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def running(trials: Iterable[Trial]) -> list[dict]:
    """The running trials among `trials`, each with its latest progress (None before the first step).

    For an allocation's `progress` (allocations/lifecycle.progress): `"running": running(trials)`.
    """
    seen: set[int] = set()
    out = []
    for trial in trials:
        if trial.status != TrialStatus.running or trial.id in seen:
            continue
        seen.add(trial.id)
        out.append({
            "trial_id": trial.id,
            "method": trial.method,
            "n_weak": trial.n_weak,
            "n_gold": trial.n_gold,
            "seed": trial.seed,
            "attempt": trial.attempts,
            "progress": trial.progress,
        })
    return sorted(out, key=lambda r: r["trial_id"])
