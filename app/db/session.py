"""Engine and sessions. A session commits when its block succeeds and rolls back when it raises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from ..config import get_settings


CONNECT_TIMEOUT_S = 10


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # SQLite ignores ON DELETE CASCADE without it
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Long trials leave connections idle for hours: ping before use instead of failing on a dead one.
    # An unreachable server fails a request in seconds (a 503) rather than hanging it on connect.
    return create_engine(
        url, pool_pre_ping=True, pool_recycle=1800, connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        # One connection for each thread that may hold a session at once: FastAPI runs sync routes on
        # anyio's 40 worker threads, so a pool of 5 + 10 answered a burst of 100 clients with
        # "QueuePool limit ... reached" errors. Idle extra connections are closed after use.
        pool_size=get_settings().db_pool_size, max_overflow=get_settings().db_pool_overflow,
    )


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


def new_session() -> Session:
    """A session the caller commits and closes (api.deps ends a request's on threads of its own)."""
    return _session_factory()()


@contextmanager
def session_scope() -> Iterator[Session]:
    session = _session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
