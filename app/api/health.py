"""Liveness and readiness: is the process up; can it reach the database, broker and workers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from app.config import get_settings
from app.db.session import get_engine

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class Readiness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"ready": True, "checks": {"database": "ok", "broker": "ok", "workers": "2 worker(s)"}},
        {"ready": False, "checks": {"database": "ok", "broker": "ok", "workers": "none answering"}},
    ]})

    ready: bool
    checks: dict[str, str] = Field(description="database, broker and workers: ok, or why not")


@router.get("/healthz", response_model=Liveness)
def healthz() -> dict:
    """The process is up and answering (it checks nothing else: GET /readyz does)."""
    return {"status": "ok"}


def _check_database() -> str:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
    return "ok"


def _check_broker_and_workers(broker_url: str) -> tuple[str, str]:
    from app.dispatch import celery_client  # imports Celery: only with a broker configured

    celery = celery_client(broker_url)
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
    replies = celery.control.ping(timeout=1.0) or []
    return "ok", (f"{len(replies)} worker(s)" if replies else "none answering")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "not ready: `checks` says what is missing", "model": Readiness}},
)
def readyz() -> JSONResponse:
    """Whether this API can serve: its database answers, and (unless embedded) the broker does and a
    worker replies to a ping. 503 with the same body when not."""
    checks: dict[str, str] = {}
    ready = True
    try:
        checks["database"] = _check_database()
    except Exception as exc:  # the reason goes into the report; any failure means not ready
        checks["database"], ready = f"unreachable: {exc.__class__.__name__}", False
    settings = get_settings()
    if settings.embedded:
        checks["broker"] = checks["workers"] = "embedded (in-process)"
    else:
        try:
            checks["broker"], checks["workers"] = _check_broker_and_workers(settings.broker_url)
            ready = ready and checks["workers"] != "none answering"
        except Exception as exc:
            checks["broker"], checks["workers"], ready = f"unreachable: {exc.__class__.__name__}", "unknown", False
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
