"""The error responses the API declares in OpenAPI, in one place: when each status is sent, and its body.

Routes name the statuses they can send (`responses=errors(404)`); what each means and its body's
schema live here, so a client (or schemathesis, tests/app/test_schemathesis.py) can rely on every
response an operation sends being one its schema declares.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in words")


class FieldError(BaseModel):
    """One invalid input, as FastAPI reports it (loc: where, msg: why, type: which rule)."""

    loc: list[str | int] = Field(description="where: body, query, path or header, then the field's path")
    msg: str
    type: str


class FieldErrors(BaseModel):
    detail: list[FieldError]


ERRORS: dict[int, dict[str, Any]] = {
    401: {"description": "no API key, or an unknown or revoked one", "model": ErrorOut},
    403: {
        "description": "a browser's cross-site request: its Origin is neither this service's own nor in "
        "LABELMIX_CORS_ALLOW_ORIGINS",
        "model": ErrorOut,
    },
    404: {"description": "nothing of that name or id (another team's counts as none)", "model": ErrorOut},
    409: {"description": "the name is taken (or reserved for a built-in or hub data set)", "model": ErrorOut},
    413: {
        "description": "the body is over LABELMIX_MAX_UPLOAD_BYTES (50 MiB by default)",
        # The framework's own limit says so in words; the upload's check names the field.
        "model": ErrorOut | FieldErrors,
    },
    422: {
        "description": "an invalid field, named in `loc` with the reason in `msg` (also a body that cannot "
        "be read, and a NUL or lone surrogate anywhere in the request)",
        "model": FieldErrors,
    },
    429: {
        "description": "the team's trials queued or running would pass LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM",
        "model": ErrorOut,
    },
    503: {
        "description": "the database is down or unreachable: try again after Retry-After seconds",
        "model": ErrorOut,
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}


def errors(*statuses: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route or router that can send these error statuses; `described` says
    more precisely what one of them means there."""
    described = described or {}
    return {
        status: {**ERRORS[status], **({"description": described[status]} if status in described else {})}
        for status in (*statuses, *described)
    }
