"""Allocations: ask how to split a budget; answered from stored trials or by new ones.

With `budgets` instead of `budget`, one request is a sweep: one allocation per budget, sharing
their trials (allocations.sweeps).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select

from app.allocations import lifecycle as allocation_service
from app.allocations import listing as allocation_list
from app.allocations import report as allocation_report
from app.allocations import sweeps as sweep_service
from app.allocations.lifecycle import allocation_out
from app.allocations.listing import AllocationFilters
from app.allocations.schemas.allocations import (
    AllocationOut,
    AllocationPage,
    AllocationReport,
    AllocationRequest,
    SweepOut,
)
from app.api.deps import SessionDep
from app.api.responses import errors
from app.auth.caller import Caller, CallerDep
from app.auth.quota import check_trial_quota
from app.db.models import Allocation, AllocationStatus
from app.db.session import session_scope
from app.dispatch import get_dispatcher
from app.errors import NotFoundError, RequestError
from app.schemas.common import NO_CONTROL_CHARACTERS, ObjectId, TaskName
from app.tasks.registry import get_or_register_task
from worker.engine.models import ModelSpecError, resolve_model

router = APIRouter(tags=["allocations"])


@router.post(
    "/allocate",
    response_model=AllocationOut | SweepOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {"description": "queued: an AllocationOut for `budget`, a SweepOut (one allocation per budget) "
              "for `budgets`; poll GET /allocations/{id} or GET /sweeps/{id}"},
        200: {"description": "stored trials already cover the request: done at once (an AllocationOut for "
              "`budget`, a SweepOut for `budgets`)", "model": AllocationOut | SweepOut},
        **errors(403, 413, 429, described={404: "no such task"}),
    },
)
def allocate(request: AllocationRequest, response: Response, caller: CallerDep) -> AllocationOut | SweepOut:
    """Start the search for the best split of `budget`, or of each of `budgets` (a sweep sharing its
    trials); 200 when stored trials answer it at once."""
    try:
        model_is_causal = resolve_model(request.model, convert=False).is_causal
    except ModelSpecError as exc:
        raise RequestError("model", str(exc)) from None
    if request.budgets is not None:
        return _sweep(request, model_is_causal, response, caller)
    with session_scope() as session:
        task = get_or_register_task(session, request.task, caller.team)
        check_trial_quota(session, caller, request.max_trials * len(request.seeds))
        allocation = allocation_service.create(session, task, request, model_is_causal)
        allocation.team = caller.team
        to_run = allocation_service.advance(session, allocation.id)
        allocation_id = allocation.id
    # Committed: now the workers can see the rows they are sent.
    get_dispatcher().enqueue_trials(to_run)
    with session_scope() as session:
        allocation = session.get(Allocation, allocation_id)
        if allocation.status == AllocationStatus.done:
            response.status_code = status.HTTP_200_OK
        return allocation_out(allocation)


def _sweep(request: AllocationRequest, model_is_causal: bool, response: Response, caller: Caller) -> SweepOut:
    with session_scope() as session:
        task = get_or_register_task(session, request.task, caller.team)
        check_trial_quota(session, caller, request.max_trials * len(request.seeds) * len(request.budgets))
        sweep_id, to_run = sweep_service.create(session, task, request, model_is_causal)
        for allocation in sweep_service.allocations_of(session, sweep_id):
            allocation.team = caller.team
    # Committed: now the workers can see the rows they are sent.
    get_dispatcher().enqueue_trials(to_run)
    with session_scope() as session:
        out = sweep_service.sweep_out(session, sweep_id)
    if out.status in ("done", "failed"):
        response.status_code = status.HTTP_200_OK
    return out


@router.get("/allocations/{allocation_id}", response_model=AllocationOut, responses=errors(404))
def get_allocation(allocation_id: Annotated[ObjectId, Path()], session: SessionDep, caller: CallerDep) -> AllocationOut:
    """The allocation: its status and progress (the running trials with their stage and step), its
    recommendation once done, and its trials."""
    return allocation_out(_visible_allocation(session, allocation_id, caller))


def _visible_allocation(session, allocation_id: str, caller: Caller) -> Allocation:
    query = allocation_service.with_everything_shown(select(Allocation).where(Allocation.id == allocation_id))
    allocation = session.scalars(query).one_or_none()
    if allocation is None or allocation.team != caller.team:  # another team's: not found, as for it
        raise NotFoundError(f"allocation {allocation_id!r} not found")
    return allocation


@router.get("/allocations/{allocation_id}/report", response_model=AllocationReport, responses=errors(404))
def get_allocation_report(
    allocation_id: Annotated[ObjectId, Path()], session: SessionDep, caller: CallerDep
) -> AllocationReport:
    """The allocation with the context to read it alone (task, model, recipe, prices, budget), every
    measured point with its interval, and the recommendation with its reasons: what `labelmix export`
    writes as JSON, CSV or Markdown."""
    return AllocationReport(**allocation_report.report(_visible_allocation(session, allocation_id, caller)))


@router.get("/allocations", response_model=AllocationPage, responses=errors(422))
def list_allocations(
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500, description="newest first, this many a page")] = 50,
    cursor: Annotated[str | None, Query(
        max_length=500, pattern=NO_CONTROL_CHARACTERS, description="`next_cursor` of the previous page")] = None,
    task: Annotated[TaskName | None, Query(description="only this task's")] = None,
    status: Annotated[AllocationStatus | None, Query(description="only those in this state")] = None,
    budget_min: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="budget at least this")] = None,
    budget_max: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="budget at most this")] = None,
    created_after: Annotated[datetime | None, Query(description="created after this time (ISO 8601)")] = None,
    created_before: Annotated[datetime | None, Query(description="created before this time (ISO 8601)")] = None,
    label: Annotated[str | None, Query(
        min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS, description="label contains this, any case")] = None,
) -> AllocationPage:
    """The caller's team's allocations, newest first, filtered; one page at a time (keyset on creation time)."""
    filters = AllocationFilters(task, status, budget_min, budget_max, created_after, created_before, label)
    rows, next_cursor = allocation_list.page(session, caller.team, filters, limit, cursor)
    return AllocationPage(items=[allocation_out(a) for a in rows], next_cursor=next_cursor)


@router.get("/sweeps/{sweep_id}", response_model=SweepOut, responses=errors(described={404: "no such sweep"}))
def get_sweep(sweep_id: Annotated[ObjectId, Path()], session: SessionDep, caller: CallerDep) -> SweepOut:
    """The sweep's allocations (cheapest budget first) and, per budget, the best over the whole sweep."""
    if any(a.team != caller.team for a in sweep_service.allocations_of(session, sweep_id)):
        raise NotFoundError(f"sweep {sweep_id!r} not found")
    return sweep_service.sweep_out(session, sweep_id)
