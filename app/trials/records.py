"""Done trials as the frontier reads them: a dozen columns selected in SQL, not whole ORM rows.

Loading a trial's whole row decodes its spec and result (stages, versions, ...) to use three of
their fields; at 10k trials that was most of a frontier's 6 s. A `TrialRecord` carries exactly what
points.group_trials reads, with the three it needs from the result extracted by the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.db.models import Task, Trial, TrialStatus
from worker.engine.spec import ENGINE_VERSION


def current_trials(task: Task, model: str | None = None) -> Select:
    """Done trials of the task as it is now, trained by this engine: trials of an older build of a task
    measured other data, and trials of an older engine were trained otherwise (spec.ENGINE_VERSION)."""
    query = select(Trial).where(
        Trial.task_id == task.id, Trial.status == TrialStatus.done, Trial.task_version == task.version,
        Trial.engine_version == ENGINE_VERSION,
    )
    return query.where(Trial.model == model) if model else query


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One done trial as reads select it (a dozen columns, not an ORM row); a point has one per seed."""

    id: int
    model: str
    method: str
    weak_labeler: str
    recipe: str | None
    recipe_label: str
    params_key: str
    n_weak: int
    n_gold: int
    seed: int
    selection_accuracy: float
    holdout_accuracy: float
    test_accuracy: float
    n_test: int
    test_correct: str | None
    status: str = TrialStatus.done
    # Whether it learned at all (engine TrialResult.learned); None for trials stored before.
    learned: bool | None = None


_COLUMNS = (
    Trial.id, Trial.model, Trial.method, Trial.weak_labeler, Trial.recipe, Trial.recipe_label, Trial.params_key,
    Trial.n_weak, Trial.n_gold, Trial.seed, Trial.selection_accuracy, Trial.holdout_accuracy, Trial.test_accuracy,
    Trial.result["n_test"].as_integer(), Trial.result["test_correct"].as_string(),
    Trial.result["learned"].as_boolean(),
)


def current_records(session: Session, task: Task, where=None) -> list[TrialRecord]:
    """The task's current done trials (current_trials) that meet `where` when given, oldest first."""
    query = current_trials(task).with_only_columns(*_COLUMNS).where(Trial.test_accuracy.is_not(None))
    if where is not None:
        query = query.where(where)
    rows = session.execute(query.order_by(Trial.id)).all()
    return [TrialRecord(*row[:13], n_test=row[13] or 0, test_correct=row[14], learned=row[15])
            for row in rows]
