"""Allocations: ask how to split a budget; answered from stored trials or by new ones."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from worker.engine.models import ModelSpecError, resolve_model

from ...db.models import Allocation, AllocationStatus
from ...db.session import session_scope
from ...dispatch import get_dispatcher
from ...schemas.allocations import AllocationOut, AllocationRequest
from ...schemas.trials import TrialOut
from ...services import allocations as allocation_service
from ...services.errors import NotFoundError, RequestError
from ...services.tasks import get_task_row
from ..deps import SessionDep

router = APIRouter(tags=["allocations"])


def allocation_out(allocation: Allocation) -> AllocationOut:
    return AllocationOut(
        id=allocation.id,
        status=allocation.status,
        task=allocation.task.name,
        request=allocation.request,
        progress=allocation_service.progress(allocation),
        recommendation=allocation.recommendation,
        error=allocation.error,
        trials=[
            TrialOut.model_validate(t).model_dump(mode="json") for t in allocation_service.trials_of(allocation)
        ],
    )


@router.post(
    "/allocate",
    response_model=AllocationOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"description": "stored trials already cover the request: done at once", "model": AllocationOut}},
)
def allocate(request: AllocationRequest, response: Response) -> AllocationOut:
    """Start the search for the best split of `budget`; 200 when stored trials answer it at once."""
    try:
        model_is_causal = resolve_model(request.model, convert=False).is_causal
    except ModelSpecError as exc:
        raise RequestError("model", str(exc)) from None
    with session_scope() as session:
        task = get_task_row(session, request.task)
        allocation = allocation_service.create(session, task, request, model_is_causal)
        to_run = allocation_service.advance(session, allocation.id)
        allocation_id = allocation.id
    # Committed: now the workers can see the rows they are sent.
    get_dispatcher().enqueue_trials(to_run)
    with session_scope() as session:
        allocation = session.get(Allocation, allocation_id)
        if allocation.status == AllocationStatus.done:
            response.status_code = status.HTTP_200_OK
        return allocation_out(allocation)


@router.get("/allocations/{allocation_id}", response_model=AllocationOut)
def get_allocation(allocation_id: str, session: SessionDep) -> AllocationOut:
    allocation = session.get(Allocation, allocation_id)
    if allocation is None:
        raise NotFoundError(f"allocation {allocation_id!r} not found")
    return allocation_out(allocation)


@router.get("/allocations", response_model=list[AllocationOut])
def list_allocations(session: SessionDep, limit: int = 50) -> list[AllocationOut]:
    rows = session.scalars(select(Allocation).order_by(Allocation.created_at.desc()).limit(min(limit, 500)))
    return [allocation_out(a) for a in rows]
