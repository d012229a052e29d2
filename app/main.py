"""The FastAPI app: routers, error handlers, and the embedded worker's start-up."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .api.routes import allocations, frontier, health, marginal, plan, studies, tasks, trials
from .config import get_settings
from .dashboard import routes as dashboard
from .services.errors import RequestError, ServiceError



def _resume_embedded_work() -> None:
    """In embedded mode this process is the only worker: pick up what a previous run left."""
    from sqlalchemy import select

    from .db.models import Allocation, AllocationStatus, Trial, TrialStatus
    from .db.session import session_scope
    from .dispatch import get_dispatcher
    from .services import grid

    dispatcher = get_dispatcher()
    with session_scope() as session:
        # Nothing else runs trials here, so a `running` trial at start-up was interrupted.
        for trial in session.scalars(select(Trial).where(Trial.status == TrialStatus.running)):
            trial.status, trial.worker = TrialStatus.queued, None
        unfinished = list(
            session.scalars(
                select(Allocation.id).where(Allocation.status.in_([AllocationStatus.queued, AllocationStatus.running]))
            )
        )
        study_trials = grid.queued_trials(session)
    dispatcher.enqueue_trials(study_trials)  # studies have no step to advance: their trials are the work
    for allocation_id in unfinished:
        dispatcher.enqueue_advance(allocation_id)


@asynccontextmanager
async def lifespan(_: FastAPI):
    if get_settings().embedded:
        _resume_embedded_work()
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="labelmix",
        version="0.1.0",
        description="How to split a labeling budget between weak and gold labels, from real elicitation trials.",
        lifespan=lifespan,
    )
    for module in (tasks, allocations, studies, frontier, marginal, plan, trials, health, dashboard):
        app.include_router(module.router)

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        if isinstance(exc, RequestError):
            detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
        else:
            detail = exc.message
        return JSONResponse({"detail": detail}, status_code=exc.status_code)

    return app


app = create_app()
