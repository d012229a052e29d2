"""The embedded database's file: written through a write-ahead log, so the file alone is not the
data until the log is checkpointed into it. `checkpoint` does that (the API at shutdown), and
`backup` copies a live database consistently with SQLite's online backup, not a file copy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def checkpoint(url: str) -> bool:
    """Move everything in the write-ahead log into the database file and empty the log; False when
    there is nothing to do (not SQLite, or no file yet) or another connection still reads."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return False
    with sqlite3.connect(path, timeout=30) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0


def backup(url: str, destination: Path) -> int:
    """A consistent copy of the live SQLite database at `destination` (which must not exist yet),
    taken while the service may be writing; returns its size in bytes."""
    path = sqlite_path(url)
    if path is None:
        raise ValueError(f"{url} is not a SQLite file: back up Postgres with pg_dump")
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}: nothing has been stored yet")
    if destination.exists():
        raise FileExistsError(f"{destination} exists: give a new path")
    destination.parent.mkdir(parents=True, exist_ok=True)
    source, copy = sqlite3.connect(path, timeout=30), sqlite3.connect(destination)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    return destination.stat().st_size
