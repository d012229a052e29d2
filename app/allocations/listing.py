"""GET /allocations: a team's allocations, filtered, newest first, one page at a time.

Pages are cut by keyset on (created_at desc, id desc), not by offset: an allocation created while a
lead pages through the list neither repeats a row nor hides one. The cursor is opaque to clients
(base64 of the last row's created_at and id), so its format can change without breaking them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.allocations.lifecycle import with_everything_shown
from app.db.base import in_utc
from app.db.models import Allocation, Task
from app.errors import RequestError
from app.tasks import names as task_names


@dataclass(frozen=True)
class AllocationFilters:
    task: str | None = None
    status: str | None = None
    budget_min: float | None = None
    budget_max: float | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    label: str | None = None


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: str


def encode_cursor(allocation: Allocation) -> str:
    raw = json.dumps({"created_at": allocation.created_at.isoformat(), "id": allocation.id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """The position a previous page ended at; a cursor not made by encode_cursor is the client's error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        return Cursor(datetime.fromisoformat(data["created_at"]), str(data["id"]))
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise RequestError("cursor", "not a cursor this service gave: pass next_cursor from the previous page as it is") from None


def check_filters(filters: AllocationFilters) -> None:
    """What each filter cannot say alone: a range that is empty by construction is a mistake, not a question."""
    if filters.budget_min is not None and filters.budget_max is not None and filters.budget_min > filters.budget_max:
        raise RequestError("budget_max", f"budget_max {filters.budget_max} is below budget_min {filters.budget_min}")
    if filters.created_after and filters.created_before:
        if in_utc(filters.created_after) >= in_utc(filters.created_before):
            raise RequestError("created_before", "created_before must be later than created_after")


def _filtered(query: Select, team: str, filters: AllocationFilters) -> Select:
    if filters.task:
        # The team's allocations only: of the names `filters.task` may stand for, theirs is the one.
        named = select(Task.id).where(Task.name.in_(task_names.names_for(team, filters.task)))
        query = query.where(Allocation.task_id.in_(named))
    if filters.status:
        query = query.where(Allocation.status == filters.status)
    # The budget lives in the stored request (JSON on SQLite, JSONB on Postgres): as_float() reads it
    # as a number on both, so the filter runs in SQL and the page is cut after it.
    budget = Allocation.request["budget"].as_float()
    if filters.budget_min is not None:
        query = query.where(budget >= filters.budget_min)
    if filters.budget_max is not None:
        query = query.where(budget <= filters.budget_max)
    if filters.created_after:
        query = query.where(Allocation.created_at > filters.created_after)
    if filters.created_before:
        query = query.where(Allocation.created_at < filters.created_before)
    if filters.label:
        # lower() on both sides rather than ILIKE: the same on SQLite and Postgres; % and _ are the
        # lead's text, not wildcards.
        needle = filters.label.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Allocation.label).like(f"%{needle}%", escape="\\"))
    return query


def _after(query: Select, cursor: Cursor) -> Select:
    # The column's type (UTCDateTime) takes these times to UTC, a time with no zone as UTC already.
    return query.where(or_(
        Allocation.created_at < cursor.created_at,
        and_(Allocation.created_at == cursor.created_at, Allocation.id < cursor.id),
    ))


def page(
    session: Session, team: str, filters: AllocationFilters, limit: int, cursor: str | None = None
) -> tuple[list[Allocation], str | None]:
    """One page of the team's allocations that pass the filters, and the cursor of the next (None at the end)."""
    check_filters(filters)
    query = _filtered(select(Allocation).where(Allocation.team == team), team, filters)
    if cursor:
        query = _after(query, decode_cursor(cursor))
    # One more than asked: whether it exists says if there is a next page, without a count.
    query = with_everything_shown(query.order_by(Allocation.created_at.desc(), Allocation.id.desc()).limit(limit + 1))
    rows = list(session.scalars(query).unique())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1])
