"""Stored trials: the cache every allocation and frontier reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from ...db.models import Trial, TrialStatus
from ...schemas.trials import TrialDetail, TrialOut
from ...services.errors import NotFoundError
from ...services.tasks import get_task_row
from ..deps import SessionDep

router = APIRouter(tags=["trials"])


@router.get("/trials", response_model=list[TrialOut])
def list_trials(
    session: SessionDep,
    task: str | None = None,
    status: TrialStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[TrialOut]:
    query = select(Trial).order_by(Trial.id).limit(limit)
    if task is not None:
        query = query.where(Trial.task_id == get_task_row(session, task).id)
    if status is not None:
        query = query.where(Trial.status == status)
    return [TrialOut.model_validate(t) for t in session.scalars(query)]


@router.get("/trials/{trial_id}", response_model=TrialDetail)
def get_trial(trial_id: int, session: SessionDep) -> TrialDetail:
    trial = session.get(Trial, trial_id)
    if trial is None:
        raise NotFoundError(f"trial {trial_id} not found")
    return TrialDetail.model_validate(trial)
