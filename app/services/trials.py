"""The trial cache: one row per trial key, claimed atomically, finished once.

Every state change is a single conditional UPDATE, so two workers (or a worker and a redelivered
message) can never both run a trial, and a finished trial is never run again.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Select, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from worker.engine.spec import TrialSpec

from ..config import get_settings
from ..db.base import utcnow
from ..db.models import Task, Trial, TrialStatus

FINISHED = (TrialStatus.done, TrialStatus.failed)


def get_or_create_trial(session: Session, task: Task, spec: TrialSpec) -> Trial:
    """The stored trial with this spec's key, created queued if new (safe under concurrency)."""
    key = spec.key()
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Trial)
        .values(
            key=key,
            task_id=task.id,
            model=spec.model,
            method=spec.method.value,
            n_weak=spec.n_weak,
            n_gold=spec.n_gold,
            seed=spec.seed,
            weak_labeler=spec.weak_labeler,
            recipe=spec.recipe.value,
            task_version=spec.task_version,
            spec=spec.model_dump(mode="json"),
            status=TrialStatus.queued,
            attempts=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.scalars(select(Trial).where(Trial.key == key)).one()


def current_trials(task: Task, model: str | None = None) -> Select:
    """Done trials of the task as it is now: trials of an older build of a task measured other data."""
    query = select(Trial).where(
        Trial.task_id == task.id, Trial.status == TrialStatus.done, Trial.task_version == task.version
    )
    return query.where(Trial.model == model) if model else query


def _stale_before():
    return utcnow() - timedelta(seconds=get_settings().stale_trial_after_s)


def claim(session: Session, trial_id: int, worker: str) -> bool:
    """Mark the trial running for this worker, if it is queued or its runner went silent."""
    now = utcnow()
    claimed = session.execute(
        update(Trial)
        .where(
            Trial.id == trial_id,
            or_(
                Trial.status == TrialStatus.queued,
                (Trial.status == TrialStatus.running) & (Trial.heartbeat_at < _stale_before()),
            ),
        )
        .values(
            status=TrialStatus.running,
            worker=worker,
            attempts=Trial.attempts + 1,
            started_at=now,
            heartbeat_at=now,
        )
    )
    return claimed.rowcount == 1


def queued_companions(session: Session, trial: Trial, methods: frozenset[str], limit: int) -> list[int]:
    """Queued trials that could train beside `trial` on one base: same task data and model."""
    if limit <= 0:
        return []
    return list(
        session.scalars(
            select(Trial.id)
            .where(
                Trial.id != trial.id,
                Trial.status == TrialStatus.queued,
                Trial.task_id == trial.task_id,
                Trial.task_version == trial.task_version,
                Trial.model == trial.model,
                Trial.method.in_(sorted(methods)),
            )
            .order_by(Trial.id)
            .limit(limit)
        )
    )


def heartbeat(session: Session, trial_id: int, worker: str) -> None:
    session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.status == TrialStatus.running, Trial.worker == worker)
        .values(heartbeat_at=utcnow())
    )


def finish(session: Session, trial_id: int, worker: str, result: dict) -> bool:
    """Store the result; False when the trial was no longer this worker's (it was reclaimed)."""
    stored = session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.status == TrialStatus.running, Trial.worker == worker)
        .values(
            status=TrialStatus.done,
            result=result,
            error=None,
            test_accuracy=result["test_accuracy"],
            selection_accuracy=result["selection_accuracy"],
            holdout_accuracy=result["holdout_accuracy"],
            test_auroc=result["test_auroc"],
            wall_s=result["wall_s"],
            finished_at=utcnow(),
        )
    )
    return stored.rowcount == 1


def record_failure(session: Session, trial_id: int, worker: str, error: str, final: bool) -> None:
    """Keep the failure reason; a final failure ends the trial, else it is queued for a retry."""
    session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.status == TrialStatus.running, Trial.worker == worker)
        .values(
            status=TrialStatus.failed if final else TrialStatus.queued,
            error=error,
            finished_at=utcnow() if final else None,
        )
    )


def requeue_stale(session: Session) -> list[int]:
    """Trials left `running` by a worker that stopped sending heartbeats: back to queued.

    A killed worker never says it died; without this its trial would stay `running` forever.
    """
    stale = session.scalars(
        select(Trial.id).where(Trial.status == TrialStatus.running, Trial.heartbeat_at < _stale_before())
    ).all()
    if stale:
        session.execute(
            update(Trial)
            .where(Trial.id.in_(stale), Trial.status == TrialStatus.running, Trial.heartbeat_at < _stale_before())
            .values(status=TrialStatus.queued, worker=None)
        )
    return list(stale)
