"""API keys: created from the CLI, shown once, stored only as a SHA-256 digest.

A key is 32 random bytes, so a plain digest is enough: a slow password hash defends guessable
secrets, and nothing about a 256-bit random key is guessable. The digest is looked up by an index.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFoundError, RequestError

from ..db.base import utcnow
from ..db.models import ApiKey

KEY_PREFIX = "lmx_"
SHOWN_CHARS = 12  # what `keys list` shows of a key, and what `keys revoke` accepts
TEAM_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# last_used_at is a hint for operators, not an audit log: one write a minute per key is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def check_team(team: str) -> str:
    if not TEAM_PATTERN.match(team):
        raise RequestError("team", "a team is 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
    return team


def create_key(session: Session, team: str, label: str = "") -> tuple[ApiKey, str]:
    """A new key for `team`; the key itself is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(team=check_team(team), label=label[:100], shown=key[:SHOWN_CHARS], key_digest=digest(key))
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.team, ApiKey.created_at)))


def revoke_key(session: Session, shown_or_id: str) -> ApiKey:
    """Revoke a key by its id or the first characters `keys list` shows."""
    query = select(ApiKey).where(ApiKey.shown == shown_or_id[:SHOWN_CHARS])
    if shown_or_id.isdigit():
        query = select(ApiKey).where(ApiKey.id == int(shown_or_id))
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no API key {shown_or_id!r} (labelmix keys list shows them)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def team_for(session: Session, key: str) -> str | None:
    """The team of a live key; None for an unknown or revoked one."""
    row = session.scalars(select(ApiKey).where(ApiKey.key_digest == digest(key))).first()
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row.team
