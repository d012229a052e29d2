"""Who a request acts for, as plain data: services take a `Caller` without knowing how a request
found it (app/auth/caller.py reads it from the request's key)."""

from __future__ import annotations

from dataclasses import dataclass

# The team of a request without a key, when keys are not required (the embedded default).
LOCAL_TEAM = "local"


@dataclass(frozen=True)
class Caller:
    team: str
