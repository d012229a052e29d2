"""DELETE /tasks/{task}: a team takes its own upload back, with everything measured on it.

What goes: the task's rows and examples, and through the tables' ON DELETE CASCADE its trials, point
aggregates, allocations (with their points), sweeps' allocations on it and grid studies; after the
transaction commits, the Optuna studies of those allocations and the weak labels cached for the
task's name. What stops it: a built-in or hub task (shared by every team: 403), another team's
upload (404: to that team it does not exist), and work still running on it (an allocation queued or
running, a study with trials queued or running: 409), which would otherwise write into rows that are
gone. A weak-labeler build still running is not waited for: it finds the task gone and keeps nothing.
"""

from __future__ import annotations

import logging
import shutil

import optuna
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from app.allocations.search import optuna_storage
from app.config import get_settings
from app.db.models import (
    ACTIVE_TRIAL_STATUSES,
    OPEN_ALLOCATION_STATUSES,
    Allocation,
    GridStudy,
    Task,
    TaskSource,
    Trial,
)
from app.errors import ConflictError, ServiceError
from app.tasks.registry import get_task_row
from worker.engine.weak_labels import cache_dir_for

log = logging.getLogger(__name__)

class SharedTaskError(ServiceError):
    status_code = 403


def delete_upload(session: Session, name: str, team: str) -> dict[str, int | str]:
    """Delete the team's uploaded task `name` and what was measured on it (see the module); what went."""
    task = get_task_row(session, name, team)
    if task.source != TaskSource.upload:
        raise SharedTaskError(f"task {name!r} is a built-in or hub data set, shared by every team: only a "
                              "team's own uploads can be deleted")
    running = session.scalars(
        select(Allocation.id).where(Allocation.task_id == task.id, Allocation.status.in_(OPEN_ALLOCATION_STATUSES))
    ).all()
    if running:
        raise ConflictError(f"task {name!r} has {len(running)} allocation(s) queued or running "
                            f"({', '.join(running[:5])}): delete it once they end")
    if session.scalars(select(GridStudy.id).where(GridStudy.task_id == task.id)).first() is not None:
        busy = session.scalars(select(Trial.id).where(Trial.task_id == task.id, Trial.status.in_(ACTIVE_TRIAL_STATUSES))).first()
        if busy is not None:
            raise ConflictError(f"task {name!r} has a study with trials queued or running: delete it once they end")
    studies = list(session.scalars(select(Allocation.study_name).where(Allocation.task_id == task.id)))
    removed = {
        "task": name,
        "rows": task.n_pool + task.n_test,
        "trials": session.scalar(select(func.count(Trial.id)).where(Trial.task_id == task.id)),
        "allocations": len(studies),
        "studies": session.scalar(select(func.count(GridStudy.id)).where(GridStudy.task_id == task.id)),
    }
    # Rows of SQL, not ORM objects: ON DELETE CASCADE removes the trials, points and allocations in the
    # database, without loading each one.
    stored = task.name  # the weak labels are cached under the name the task is stored as
    session.execute(delete(Task).where(Task.id == task.id))
    _after_commit(session, lambda: forget_outside_the_database(stored, studies))
    return removed


def _after_commit(session: Session, action) -> None:
    @event.listens_for(session, "after_commit", once=True)
    def run(_session) -> None:
        action()


def forget_outside_the_database(name: str, optuna_studies: list[str]) -> None:
    """Optuna's studies of the task's allocations and its cached weak labels: best effort, logged."""
    storage = optuna_storage(get_settings().optuna_storage_url)
    for study in optuna_studies:
        try:
            optuna.delete_study(study_name=study, storage=storage)
        except KeyError:  # never created (the allocation failed before its study), or gone already
            pass
        except Exception:
            log.exception("could not delete Optuna study %s of deleted task %s", study, name)
    forget_weak_labels(name)


def forget_weak_labels(name: str) -> None:
    shutil.rmtree(cache_dir_for(name), ignore_errors=True)
