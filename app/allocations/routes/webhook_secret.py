"""The caller's team's webhook secret: what its allocations' callbacks are signed with (allocations.webhooks)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.allocations import webhooks
from app.api.deps import SessionDep
from app.api.responses import errors
from app.auth.caller import CallerDep

router = APIRouter(tags=["webhooks"])


class WebhookSecretOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "team": "default", "secret": "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
        "created_at": "2026-11-29T02:59:46Z",
    }]})

    team: str
    secret: str = Field(
        description="HMAC-SHA256 key (this hex text, as UTF-8 bytes): X-Labelmix-Signature is sha256= and the hex "
        "HMAC of X-Labelmix-Timestamp, a dot and the raw body"
    )
    created_at: datetime = Field(description="when this secret was made (or last rotated)")


def _out(row) -> WebhookSecretOut:
    return WebhookSecretOut(team=row.team, secret=row.secret, created_at=row.created_at)


@router.get("/webhook-secret", response_model=WebhookSecretOut)
def get_webhook_secret(session: SessionDep, caller: CallerDep) -> WebhookSecretOut:
    """The secret the caller's team's callbacks are signed with; made on first use."""
    return _out(webhooks.team_secret(session, caller.team))


@router.post("/webhook-secret/rotate", response_model=WebhookSecretOut, responses=errors(403, 413))
def rotate_webhook_secret(session: SessionDep, caller: CallerDep) -> WebhookSecretOut:
    """A new secret for the caller's team: callbacks signed from now on use it, the old one is gone."""
    return _out(webhooks.rotate_secret(session, caller.team))
