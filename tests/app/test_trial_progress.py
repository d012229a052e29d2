"""A running trial's progress as the API shows it (trials/progress.py); the worker side
(the heartbeat writing it, Celery's task state) is tested with a real worker in test_celery_worker.py."""

from __future__ import annotations

from app.db.models import Trial
from app.trials import progress as trial_progress


def trial(id: int, status: str, progress: dict | None = None) -> Trial:
    return Trial(id=id, status=status, method="seq_sft", n_weak=10, n_gold=5, seed=0, attempts=1, progress=progress)


def test_only_running_trials_are_listed_once_each_with_their_latest_progress():
    row = trial_progress.as_row("gold", 4, 20, 0.71)
    assert row["stage"] == "gold" and (row["step"], row["total_steps"], row["val_auroc"]) == (4, 20, 0.71)
    assert row["at"].endswith("+00:00")
    running = trial(3, "running", row)
    listed = trial_progress.running([trial(1, "done", row), running, trial(2, "running"), running, trial(4, "queued")])
    assert [r["trial_id"] for r in listed] == [2, 3]
    assert listed[0]["progress"] is None  # claimed, no step yet
    assert listed[1] == {"trial_id": 3, "method": "seq_sft", "n_weak": 10, "n_gold": 5, "seed": 0, "attempt": 1,
                         "progress": row}
