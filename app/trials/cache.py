"""The trial cache: one row per trial key, claimed atomically, finished once.

Every state change is a single conditional UPDATE, so two workers (or a worker and a redelivered
message) can never both run a trial, and a finished trial is never run again. A message is only a
hint that a trial wants running: the row is the truth, and the sweeps below find trials whose
messages or workers were lost (trials/recovery.py runs them).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db.base import utcnow
from app.db.models import Task, Trial, TrialStatus
from app.trials import aggregates as point_aggregates
from app.trials import recipe_keys
from worker.engine.spec import TrialSpec

FINISHED = (TrialStatus.done, TrialStatus.failed)


def get_or_create_trial(session: Session, task: Task, spec: TrialSpec) -> Trial:
    """The stored trial with this spec's key, created queued if new (safe under concurrency)."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    values = new_trial_values(task, spec)
    session.execute(insert(Trial).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    return session.scalars(select(Trial).where(Trial.key == values["key"])).one()


def new_trial_values(task: Task, spec: TrialSpec) -> dict:
    """The columns of a new queued trial for this spec (its recipe keys included)."""
    stored_spec = spec.model_dump(mode="json")
    return {
        "key": spec.key(),
        "task_id": task.id,
        "model": spec.model,
        "method": spec.method.value,
        "n_weak": spec.n_weak,
        "n_gold": spec.n_gold,
        "seed": spec.seed,
        "weak_labeler": spec.weak_labeler,
        "recipe": spec.recipe.value,
        "recipe_label": recipe_keys.label(spec.recipe.value, stored_spec["params"]),
        "params_key": recipe_keys.params_key(stored_spec["params"]),
        "task_version": spec.task_version,
        "engine_version": spec.engine_version,
        "spec": stored_spec,
        "status": TrialStatus.queued,
        "attempts": 0,
        "created_at": utcnow(),
    }


def _stale_before():
    return utcnow() - timedelta(seconds=get_settings().stale_trial_after_s)


def _silent():
    """A running trial whose worker stopped its heartbeat: killed, hung, or past its time limit."""
    return (Trial.status == TrialStatus.running) & (Trial.heartbeat_at < _stale_before())


def _over_time():
    """A running trial whose attempt began longer ago than the time limit allows."""
    return Trial.started_at < utcnow() - timedelta(seconds=get_settings().trial_time_limit_s)


def claim(session: Session, trial_id: int, worker: str) -> bool:
    """Mark the trial running for this worker, if it is queued or its runner went silent in time.

    A silent run past its time limit is not taken over: it is the sweep's to fail (fail_overdue).
    """
    now = utcnow()
    claimed = session.execute(
        update(Trial)
        .where(Trial.id == trial_id, or_(Trial.status == TrialStatus.queued, _silent() & ~_over_time()))
        .values(
            status=TrialStatus.running,
            worker=worker,
            attempts=Trial.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            progress=None,  # a new attempt starts from nothing
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
                Trial.engine_version == trial.engine_version,
                Trial.model == trial.model,
                Trial.method.in_(sorted(methods)),
            )
            .order_by(Trial.id)
            .limit(limit)
        )
    )


def heartbeat(session: Session, trial_id: int, worker: str, progress: dict | None = None) -> bool:
    """Vouch that this worker still runs the trial (and store how far it got, when given); False
    when it is no longer this worker's."""
    values = {"heartbeat_at": utcnow()} | ({"progress": progress} if progress is not None else {})
    beat = session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.status == TrialStatus.running, Trial.worker == worker)
        .values(**values)
    )
    return beat.rowcount == 1


def store_progress(session: Session, trial_id: int, worker: str, progress: dict) -> None:
    """Keep how far this worker's attempt got (also after it ended: failed trials show where)."""
    session.execute(update(Trial).where(Trial.id == trial_id, Trial.worker == worker).values(progress=progress))


def done_values(result: dict) -> dict:
    """The columns of a trial that ends done with this result (the engine's TrialResult, as JSON)."""
    return {
        "status": TrialStatus.done, "result": result, "error": None, "finished_at": utcnow(),
        **{column: result[column] for column in ("test_accuracy", "selection_accuracy", "holdout_accuracy",
                                                 "test_auroc", "wall_s")},
    }


def finish(session: Session, trial_id: int, worker: str, result: dict) -> bool:
    """Store the result; False when the trial was no longer this worker's (it was reclaimed)."""
    stored = session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.status == TrialStatus.running, Trial.worker == worker)
        .values(**done_values(result))
        .returning(Trial.task_id)
    )
    task_id = stored.scalar_one_or_none()
    if task_id is None:
        return False
    # In the same transaction, so that reads see the result, its point's aggregate and a new
    # results_version (which makes cached answers stale: api.stored_answers) all at once.
    point_aggregates.refresh(session, session.get(Task, task_id))
    return True


def record_failure(session: Session, trial_id: int, worker: str, error: str, final: bool) -> None:
    """Keep the failure reason; a final failure ends the trial, else it is queued for a retry."""
    session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.status == TrialStatus.running, Trial.worker == worker)
        .values(
            status=TrialStatus.failed if final else TrialStatus.queued,
            error=error,
            finished_at=utcnow() if final else None,
            # Not final: the caller sends it again (Celery's retry), which counts as a send.
            enqueued_at=None if final else utcnow(),
        )
    )


def mark_enqueued(session: Session, trial_ids: list[int]) -> None:
    """Note that a message for each of these trials was just sent (see resend_unclaimed)."""
    if trial_ids:
        session.execute(update(Trial).where(Trial.id.in_(trial_ids)).values(enqueued_at=utcnow()))


def _returning_ids(session: Session, statement) -> list[int]:
    # One UPDATE ... RETURNING: when several workers sweep at once, each row goes to one of them.
    return sorted(session.scalars(statement.returning(Trial.id)).all())


def fail_overdue(session: Session) -> list[int]:
    """Silent trials whose attempt ran past the time limit: failed for good, with the reason.

    Such a trial hung (its heartbeat stops at the limit) or its worker died near the end of it;
    running it again would take as long, so it is not retried.
    """
    limit = get_settings().trial_time_limit_s
    return _returning_ids(
        session,
        update(Trial)
        .where(_silent(), _over_time())
        .values(
            status=TrialStatus.failed,
            error=f"exceeded the time limit of {limit} s (its worker stopped answering past it)",
            finished_at=utcnow(),
        ),
    )


def requeue_stale(session: Session) -> list[int]:
    """Trials left `running` by a worker that stopped sending heartbeats: back to queued.

    A killed worker never says it died; without this its trial would stay `running` forever. The
    caller sends them again (their old message may have been acknowledged, or lost with the broker).
    """
    return _returning_ids(
        session,
        update(Trial).where(_silent(), ~_over_time()).values(status=TrialStatus.queued, worker=None, enqueued_at=utcnow()),
    )


def resend_unclaimed(session: Session) -> list[int]:
    """Queued trials last sent longer ago than requeue_unclaimed_after_s: to send again.

    Call it only when the broker's trials queue is empty: then such a trial's message is not
    waiting behind others but gone, taken by a worker that died before claiming the row (Redis
    hides it for the visibility timeout) or lost with the broker. A duplicate is harmless: the
    claim lets one message through.
    """
    before = utcnow() - timedelta(seconds=get_settings().requeue_unclaimed_after_s)
    last_sent = func.coalesce(Trial.enqueued_at, Trial.created_at)  # never sent: its API died first
    return _returning_ids(
        session,
        update(Trial).where(Trial.status == TrialStatus.queued, last_sent < before).values(enqueued_at=utcnow()),
    )
