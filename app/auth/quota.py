"""A team's share of the workers and of the database, bounded.

Work: trials queued or running for its allocations and studies, and its uploads' weak labelers still
being built (each trains a model on the trials queue), count against LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM.
Trials are a shared cache (two teams asking for the same trial share it), so a trial counts for
every team whose allocation waits on it: each team's limit bounds the work it can make wait.
Storage: a team's uploaded tasks and their rows, against LABELMIX_MAX_TASKS_PER_TEAM and
LABELMIX_MAX_STORED_ROWS_PER_TEAM. Past a limit, a 429 with the counts.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import ServiceError

from ..config import get_settings
from ..db.models import (
    ACTIVE_TRIAL_STATUSES,
    Allocation,
    AllocationStatus,
    GridStudy,
    StudyPoint,
    StudyPointTrial,
    Task,
    TaskSource,
    Trial,
)
from .team import Caller


class TooManyTrials(ServiceError):
    status_code = 429


def active_trials(session: Session, team: str) -> int:
    """Distinct trials queued or running that the team's allocations or grid studies wait on."""
    active = Trial.status.in_(ACTIVE_TRIAL_STATUSES)
    via_allocations = (
        select(Trial.id)
        .join(StudyPointTrial, StudyPointTrial.trial_id == Trial.id)
        .join(StudyPoint, StudyPoint.id == StudyPointTrial.point_id)
        .join(Allocation, Allocation.id == StudyPoint.allocation_id)
        # A done allocation waits on nothing (a trial it shares with an open one is counted there):
        # without this the join grew with every allocation the team ever made (21 ms a request after
        # a few hundred answered from the store).
        .where(Allocation.team == team, Allocation.status != AllocationStatus.done, active)
    )
    ids = set(session.scalars(via_allocations))
    # A study keeps its plan (trial ids per point) as JSON: read the ids, then ask which are active.
    planned = {i for plan in session.scalars(select(GridStudy.points).where(GridStudy.team == team))
               for point in plan["points"] for i in point.get("trial_ids", [])}
    if planned - ids:
        ids |= set(session.scalars(select(Trial.id).where(Trial.id.in_(planned - ids), active)))
    return len(ids)


def labeler_builds(session: Session, team: str) -> int:
    """The team's uploads whose default weak labels are still to be built (queued or training): their
    accuracy is set when they are described (`weak_labels` is JSON, whose None is stored as JSON null)."""
    return session.scalar(
        select(func.count(Task.id)).where(Task.team == team, Task.source == TaskSource.upload,
                                          Task.has_weak_labels.is_(False), Task.weak_label_accuracy.is_(None))
    ) or 0


def check_trial_quota(session: Session, caller: Caller, requested: int) -> None:
    """429 when the trials this request may queue would take the team past its limit (checked before
    any of its rows is written)."""
    check_work_quota(session, caller.team, requested)


def check_work_quota(session: Session, team: str, requested: int, what: str = "this request") -> None:
    """check_trial_quota for a team: trials and weak-labeler builds together."""
    limit = get_settings().max_active_trials_per_team
    trials, builds = active_trials(session, team), labeler_builds(session, team)
    total = trials + builds + requested
    if total > limit:
        raise TooManyTrials(
            f"team {team!r} would have {total} trials and weak-labeler builds queued or running "
            f"({builds} of them weak-labeler builds; {requested} from {what}): over its limit of {limit} "
            "(LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM). Wait for running allocations, studies and uploads to "
            "finish, or ask for less."
        )


def check_upload_quota(session: Session, team: str, rows: int | None = None) -> None:
    """429 when one more uploaded task (of `rows` rows, once they are counted) would take the team past
    its caps on tasks or stored rows."""
    settings = get_settings()
    tasks, stored = session.execute(
        select(func.count(Task.id), func.coalesce(func.sum(Task.n_pool + Task.n_test), 0))
        .where(Task.team == team, Task.source == TaskSource.upload)
    ).one()
    if tasks + 1 > settings.max_tasks_per_team:
        raise TooManyTrials(
            f"team {team!r} has {tasks} uploaded tasks, the limit (LABELMIX_MAX_TASKS_PER_TEAM is "
            f"{settings.max_tasks_per_team}): delete one (DELETE /tasks/{{task}}) before uploading another"
        )
    if rows is not None and stored + rows > settings.max_stored_rows_per_team:
        raise TooManyTrials(
            f"team {team!r} stores {stored} rows in its uploads; this one's {rows} would make "
            f"{stored + rows}, over the limit of {settings.max_stored_rows_per_team} "
            "(LABELMIX_MAX_STORED_ROWS_PER_TEAM): delete a task (DELETE /tasks/{task}) first"
        )
