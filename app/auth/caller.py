"""The team behind a request, from its `Authorization: Bearer <key>` header.

With LABELMIX_REQUIRE_API_KEYS off (the embedded default on 127.0.0.1) a request without a key acts
for the team `local`; a request that sends a key is checked either way, so a dashboard or script
that has one behaves the same on both.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import or_

from ..api.deps import SessionDep
from ..config import get_settings
from ..db.models import Task
from .keys import team_for
from .team import LOCAL_TEAM, Caller
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def current_caller(request: Request, session: SessionDep) -> Caller:
    header = request.headers.get("authorization")
    if header is None:
        if get_settings().require_api_keys:
            raise HTTPException(401, "an API key is required: send 'Authorization: Bearer <key>' "
                                     "(an operator creates one with: labelmix keys create --team NAME)", CHALLENGE)
        return Caller(LOCAL_TEAM)
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, "the Authorization header must be 'Bearer <key>'", CHALLENGE)
    team = team_for(session, key.strip())
    if team is None:
        raise HTTPException(401, "unknown or revoked API key", CHALLENGE)
    return Caller(team)


CallerDep = Annotated[Caller, Depends(current_caller)]


def visible_to(caller: Caller):
    """A filter on tasks: built-in and hub tasks (no team) are everyone's, uploads their team's."""
    return or_(Task.team.is_(None), Task.team == caller.team)


def can_see(caller: Caller, task: Task) -> bool:
    return task.team is None or task.team == caller.team
