"""The FastAPI app: routers, error handlers, and the embedded worker's start-up."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from app.allocations import webhooks
from app.allocations.routes import allocations, webhook_secret
from app.api import health
from app.errors import RequestError, ServiceError
from app.results import warm_reads
from app.results.routes import frontier, marginal, plan
from app.studies import grid
from app.studies import routes as studies
from app.tasks import routes as tasks
from app.tasks.registry import refresh_stale_builtin_tasks
from app.trials import routes as trials

from . import dispatch
from .api import metrics
from .api.body_limit import JsonBodyLimitError
from .api.deps import reject_unstorable_text
from .api.openapi_examples import keep_example_nulls
from .api.responses import errors
from .api.unreadable_body import unreadable_body_or_http_error
from .api.validation_errors import request_validation_error
from .auth.caller import current_caller
from .auth.hosts import LoopbackHostGuard
from .auth.origin import CrossSiteGuard
from .config import get_settings
from .dashboard import routes as dashboard
from .db.models import OPEN_ALLOCATION_STATUSES, Allocation, Trial, TrialStatus
from .db.session import get_engine, session_scope
from .db.sqlite_files import checkpoint

log = logging.getLogger(__name__)

# Room for a multipart upload's envelope (boundaries, part headers, the name field) around a file
# of exactly LABELMIX_MAX_UPLOAD_BYTES, which the upload's own check then measures exactly.
FORM_OVERHEAD_BYTES = 64 * 1024
RETRY_AFTER_S = 10


def _database_unavailable_errors() -> tuple[type[Exception], ...]:
    """What a database that is down or unreachable raises: SQLAlchemy's wrappers (a refused or dropped
    connection, no connection free in the pool), and psycopg's own where it is used directly."""
    errors: list[type[Exception]] = [sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError]
    try:
        import psycopg
    except ImportError:  # embedded installs may have SQLite only
        pass
    else:
        errors += [psycopg.OperationalError, psycopg.InterfaceError]
    return tuple(errors)



def _where(request: Request, field: str) -> str:
    """Where a field a service refused came from, as FastAPI's own 422s say it: a GET's fields are
    its path's or its query's (`/plan/{task}?recipe=`), never a body's."""
    if field in request.path_params:
        return "path"
    return "query" if request.method in ("GET", "HEAD") else "body"


def _resume_embedded_work() -> None:
    """In embedded mode this process is the only worker: pick up what a previous run left."""
    dispatcher = dispatch.get_dispatcher()
    with session_scope() as session:
        # Nothing else runs trials here, so a `running` trial at start-up was interrupted.
        for trial in session.scalars(select(Trial).where(Trial.status == TrialStatus.running)):
            trial.status, trial.worker = TrialStatus.queued, None
        unfinished = list(
            session.scalars(
                select(Allocation.id).where(Allocation.status.in_(OPEN_ALLOCATION_STATUSES))
            )
        )
        study_trials = grid.queued_trials(session)
        # This process is the only sender: one left `sending` was cut off when the last run stopped.
        webhooks.reclaim_stale(session, older_than_s=0)
        lost_callbacks = webhooks.undelivered(session)  # ended while the last run stopped: not sent yet
    dispatcher.enqueue_trials(study_trials)  # studies have no step to advance: their trials are the work
    for allocation_id in unfinished:
        dispatcher.enqueue_advance(allocation_id)
    for allocation_id in lost_callbacks:
        dispatcher.enqueue_callback(allocation_id)


def _refresh_builtin_tasks() -> None:
    """After an upgrade, rebuild the built-in tasks now, not inside some later GET."""
    try:
        with session_scope() as session:
            if names := refresh_stale_builtin_tasks(session):
                log.info("rebuilt built-in tasks for this labelmix: %s", ", ".join(names))
    except _database_unavailable_errors():  # the API still starts, answering 503 until it is back
        log.warning("database unavailable at start-up: built-in tasks not checked", exc_info=True)


@asynccontextmanager
async def lifespan(_: FastAPI):
    _refresh_builtin_tasks()
    if get_settings().embedded:
        _resume_embedded_work()
    if get_settings().prime_reads:
        warm_reads.start_priming()  # then freezes
    else:
        warm_reads.freeze_long_lived()
    yield
    # The embedded database's write-ahead log folded into its file, so that a copy of the file alone
    # is the data: closing the pool lets SQLite do it, the checkpoint does it if a connection is left.
    get_engine().dispose()
    checkpoint(get_settings().database_url)


def create_app() -> FastAPI:
    # FastAPI with /docs and /redoc whose scripts and styles come from a package, not a CDN: the
    # pages work on a network with no way out (fastapi-offline).
    app = FastAPIOffline(
        title="labelmix",
        version="0.1.0",
        description="How to split a labeling budget between weak and gold labels, from real elicitation trials.",
        lifespan=lifespan,
        dependencies=[Depends(reject_unstorable_text)],
        # reject_unstorable_text can refuse any request, whatever its parameters.
        responses=errors(422),
    )
    # Everything but the health checks, the metrics and the dashboard's page (which asks for a key)
    # needs one when LABELMIX_REQUIRE_API_KEYS is on; routes that scope by team take the caller themselves.
    for module in (tasks, allocations, studies, frontier, marginal, plan, trials, webhook_secret):
        app.include_router(module.router, dependencies=[Depends(current_caller)], responses=errors(401, 503))
    for module in (health, dashboard, metrics):
        app.include_router(module.router)
    settings = get_settings()
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.cors_allow_origins)
    if not settings.require_api_keys:
        app.add_middleware(LoopbackHostGuard, trusted_hosts=settings.trusted_hosts)
    if settings.cors_allow_origins:
        # Keys travel in a header, never in cookies: no credentials mode.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_methods=["*"],
                           allow_headers=["authorization", "content-type"], allow_credentials=False)
    # Every request body, counted while it streams in (Content-Length first): an oversized upload is
    # refused with 413 before it is parsed or spooled whole. Starlette's limit, as a middleware of ours
    # rather than FastAPI's max_body_size (which puts it outside every middleware), so that its
    # plain-text 413 can be answered as JSON by the one added next, around it.
    max_body = settings.max_upload_bytes + FORM_OVERHEAD_BYTES
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body)
    app.add_middleware(JsonBodyLimitError, max_body_size=max_body)
    # Added last, so outermost: every request is counted, those the guards above refuse included.
    app.add_middleware(metrics.MetricsMiddleware)
    if settings.embedded:  # trials run in this process: /metrics shows their counters, from 0 at start
        from . import trial_metrics  # noqa: F401  registered only where trials run (zeros elsewhere)

    # FastAPI's 422, able to quote a NaN or Infinity it refused (app/api/validation_errors.py).
    app.add_exception_handler(RequestValidationError, request_validation_error)
    # A body that cannot be parsed (not UTF-8 JSON, a broken multipart form): a 422 on `body` too.
    app.add_exception_handler(StarletteHTTPException, unreadable_body_or_http_error)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if isinstance(exc, RequestError):
            problems = getattr(exc, "problems", [(exc.field, exc.message)])
            detail = [{"loc": [_where(request, field), field], "msg": message, "type": "value_error"}
                      for field, message in problems]
        else:
            detail = exc.message
        return JSONResponse({"detail": detail}, status_code=exc.status_code)

    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # Not the client's fault and not a bug here: say so, and when to try again.
        log.warning("database unavailable (%s)", exc.__class__.__name__)
        return JSONResponse(
            {"detail": "database unavailable"}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    for error in _database_unavailable_errors():
        app.add_exception_handler(error, database_unavailable)

    keep_example_nulls(app)
    return app


app = create_app()
