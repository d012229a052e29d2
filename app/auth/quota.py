"""A team's share of the workers: trials queued or running for its allocations, bounded.

Trials are a shared cache (two teams asking for the same trial share it), so a trial counts for
every team whose allocation waits on it: each team's limit bounds the work it can make wait.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import get_settings
from ..db.models import Allocation, StudyPoint, StudyPointTrial, Trial, TrialStatus
from ..services.errors import ServiceError
from .caller import Caller


class TooManyTrials(ServiceError):
    status_code = 429


def active_trials(session: Session, team: str) -> int:
    """Distinct trials queued or running that the team's allocations wait on."""
    query = (
        select(func.count(func.distinct(Trial.id)))
        .join(StudyPointTrial, StudyPointTrial.trial_id == Trial.id)
        .join(StudyPoint, StudyPoint.id == StudyPointTrial.point_id)
        .join(Allocation, Allocation.id == StudyPoint.allocation_id)
        .where(Allocation.team == team, Trial.status.in_([TrialStatus.queued, TrialStatus.running]))
    )
    return session.scalar(query) or 0


def check_trial_quota(session: Session, caller: Caller, requested: int) -> None:
    """429 when the trials this request may queue would take the team past its limit."""
    limit = get_settings().max_active_trials_per_team
    active = active_trials(session, caller.team)
    if active + requested > limit:
        raise TooManyTrials(
            f"team {caller.team!r} has {active} trials queued or running and this request may add up to "
            f"{requested}: over its limit of {limit} (LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM). Wait for "
            "running allocations to finish, or ask for fewer points or seeds."
        )
