"""Stored trials: the cache every allocation and frontier reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import defer

from app.api.deps import SessionDep
from app.api.responses import errors
from app.auth.caller import CallerDep, can_see, visible_to
from app.db.models import Task, Trial, TrialStatus
from app.errors import NotFoundError
from app.schemas.common import MAX_INT32, TaskName
from app.tasks.registry import get_task_row
from app.trials.schemas import TrialDetail, TrialOut

router = APIRouter(tags=["trials"])


@router.get("/trials", response_model=list[TrialOut], responses=errors(described={404: "no such task"}))
def list_trials(
    session: SessionDep,
    caller: CallerDep,
    task: Annotated[TaskName | None, Query(description="only this task's trials")] = None,
    status: TrialStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[TrialOut]:
    """Stored trials the caller can see, by id: of one task or of all, in one status or any; without
    their spec and result (GET /trials/{id} has them)."""
    # A listing shows no spec or result (JSON, kilobytes a trial): they are not read.
    query = select(Trial).options(defer(Trial.spec), defer(Trial.result)).order_by(Trial.id).limit(limit)
    if task is not None:
        query = query.where(Trial.task_id == get_task_row(session, task, caller.team).id)
    else:
        query = query.join(Task, Trial.task_id == Task.id).where(visible_to(caller))
    if status is not None:
        query = query.where(Trial.status == status)
    return [TrialOut.model_validate(t) for t in session.scalars(query)]


@router.get("/trials/{trial_id}", response_model=TrialDetail, responses=errors(404))
def get_trial(trial_id: int, session: SessionDep, caller: CallerDep) -> TrialDetail:
    """A stored trial with its full spec (what was trained) and the engine's result."""
    # Ids are 32-bit: a larger (or negative) one names no trial, and Postgres refuses to compare it with
    # one ("integer out of range", a 500 before).
    trial = session.get(Trial, trial_id) if 0 < trial_id <= MAX_INT32 else None
    if trial is None or not can_see(caller, trial.task):  # another team's upload: no such trial
        raise NotFoundError(f"trial {trial_id} not found")
    return TrialDetail.model_validate(trial)
