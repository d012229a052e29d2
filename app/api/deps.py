"""Request-scoped dependencies: a session that commits on success and rolls back on error, and the
check that every string a request brings can be stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from ..db.session import new_session
from ..services.storable_text import unstorable_reason


# Threads of their own for ending request sessions: were they to queue for FastAPI's 40 threads
# behind routes waiting for a connection, the sessions holding those connections could not close,
# and 100 clients at once waited on each other until the pool timed out (503s).
_ending = anyio.CapacityLimiter(8)


async def get_db() -> AsyncIterator[Session]:
    """The request's session: committed (or rolled back) and closed on threads that never wait behind routes."""
    session = new_session()
    try:
        yield session
        await anyio.to_thread.run_sync(session.commit, limiter=_ending)
    except BaseException:
        await anyio.to_thread.run_sync(session.rollback, limiter=_ending)
        raise
    finally:
        await anyio.to_thread.run_sync(session.close, limiter=_ending)


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
