"""A team's share of the workers: trials queued or running for its allocations and studies, bounded.

Trials are a shared cache (two teams asking for the same trial share it), so a trial counts for
every team whose allocation waits on it: each team's limit bounds the work it can make wait.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import get_settings
from ..db.models import Allocation, AllocationStatus, GridStudy, StudyPoint, StudyPointTrial, Trial, TrialStatus
from ..services.errors import ServiceError
from .caller import Caller


class TooManyTrials(ServiceError):
    status_code = 429


def active_trials(session: Session, team: str) -> int:
    """Distinct trials queued or running that the team's allocations or grid studies wait on."""
    active = Trial.status.in_([TrialStatus.queued, TrialStatus.running])
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


def check_trial_quota(session: Session, caller: Caller, requested: int, included: bool = False) -> None:
    """429 when the trials this request may queue would take the team past its limit.

    `included`: the request's rows are already in the session (a study, checked once made; its
    transaction then rolls back).
    """
    limit = get_settings().max_active_trials_per_team
    active = active_trials(session, caller.team)
    total = active if included else active + requested
    if total > limit:
        raise TooManyTrials(
            f"team {caller.team!r} would have {total} trials queued or running, {requested} of them from this "
            f"request: over its limit of {limit} (LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM). Wait for running "
            "allocations and studies to finish, or ask for fewer points or seeds."
        )
