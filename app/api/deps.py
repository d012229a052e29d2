"""Request-scoped dependencies: a session that commits on success and rolls back on error, and the
check that every string a request brings can be stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any
from weakref import WeakKeyDictionary

import anyio
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from app.db.storable_text import unstorable_reason

from ..config import get_settings
from ..db.session import new_session

# A request's session holds a pooled connection from its first query until it ends, and between the
# two the request needs FastAPI's worker threads (40) again (its route, its response's validation).
# With more requests in flight than threads, requests waiting for a connection took every thread
# while those holding the connections waited for one: 100 clients at once stalled until the pool
# timed out (503s on GET /trials and /allocations/{id}). So sessions are admitted below the thread
# count, waiting in the event loop (no thread held), and end on threads of their own.
SESSION_HEADROOM_THREADS = 8
ENDING_THREADS = 8
_limiters: WeakKeyDictionary = WeakKeyDictionary()


def _limits() -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
    """(sessions admitted, threads that end them) for the running event loop (a test client runs several)."""
    loop = asyncio.get_running_loop()
    if loop not in _limiters:
        threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
        settings = get_settings()
        admitted = min(threads - SESSION_HEADROOM_THREADS, settings.db_pool_size + settings.db_pool_overflow)
        _limiters[loop] = (anyio.CapacityLimiter(max(admitted, 1)), anyio.CapacityLimiter(ENDING_THREADS))
    return _limiters[loop]


async def get_db() -> AsyncIterator[Session]:
    """The request's session, once one of the admitted ones is free; committed (or rolled back) and
    closed on threads that never wait behind routes."""
    admitted, ending = _limits()
    async with admitted:
        session = new_session()
        try:
            yield session
            await anyio.to_thread.run_sync(session.commit, limiter=ending)
        except BaseException:
            await anyio.to_thread.run_sync(session.rollback, limiter=ending)
            raise
        finally:
            await anyio.to_thread.run_sync(session.close, limiter=ending)


# scope="function": the session commits before the response is sent, so a commit that fails (a
# unique name taken meanwhile, the database gone) is the answer, not a 201 for rows never stored;
# and a client that reads right after its 201 finds them.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def _printable(key: str) -> str:
    # A key goes into an error's loc, which must itself encode as UTF-8: a surrogate is spelled out.
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _strings(value: Any, loc: tuple) -> Iterator[tuple[tuple, str]]:
    """Every string in a decoded JSON value (keys too) with where it sits; no recursion, so a
    deeply nested body cannot overflow the stack."""
    stack = [(value, loc)]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            yield loc, value
        elif isinstance(value, dict):
            for key, item in value.items():
                key_loc = (*loc, _printable(key))
                yield key_loc, key
                stack.append((item, key_loc))
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))


async def reject_unstorable_text(request: Request) -> None:
    """422 for a NUL or a lone surrogate in the path, the query or a JSON body, naming where.

    JSON spells both ("\\u0000", "\\ud800") and Python decodes them without complaint; Postgres
    refuses NUL and UTF-8 cannot encode a surrogate, so they failed only when a row was written, or
    when a 422 quoted them back (a 500 either way). This runs before the body's own validation.
    """
    found = [(("path", name), value) for name, value in request.path_params.items() if isinstance(value, str)]
    found += [(("query", name), value) for name, value in request.query_params.multi_items()]
    if "json" in request.headers.get("content-type", "") and await request.body():
        try:
            body = await request.json()  # parsed once already for the endpoint; this reads its cache
        except (ValueError, RecursionError):
            body = None  # not JSON: the endpoint's own parsing says so, or it takes no body
        found += _strings(body, ("body",))
    errors = [
        {"loc": loc, "msg": reason, "type": "value_error"}
        for loc, text in found
        if (reason := unstorable_reason(text))
    ]
    if errors:
        raise RequestValidationError(errors)
