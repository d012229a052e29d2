"""Fixtures for the service's tests: a real, migrated Postgres database and an API client on it.

Postgres is required (CI starts it): when it is unreachable the fixtures fail loudly, they do not
skip. The server is LABELMIX_TEST_POSTGRES (default postgresql+psycopg://postgres@127.0.0.1:5432);
each test session gets its own database, created here and dropped at the end.

Settings, engines, the dispatcher, Celery clients and Optuna's storage are cached per process (functools.lru_cache),
so switching databases means clearing those caches: `configure` (and `clear_app_caches`) do it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[2]

# Starlette's TestClient sends `Host: testserver`: served as a loopback name would be (app/auth/hosts.py),
# here only. test_hosts.py checks the guard with this unset.
os.environ.setdefault("LABELMIX_TRUSTED_HOSTS", "testserver")
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
PG_SERVER = os.environ.get("LABELMIX_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432").rstrip("/")

# Every table the app's migrations create (Optuna's live beside them in the same database).
APP_TABLES = (
    "tasks", "examples", "trials", "allocations", "study_points", "study_point_trials", "grid_studies", "api_keys",
    "point_aggregates", "team_webhook_secrets",
)
APP_VERSION_TABLE = "labelmix_alembic_version"


# --- databases ---------------------------------------------------------------------------------


def _admin_conninfo() -> str:
    url = make_url(PG_SERVER)
    parts = {"host": url.host or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres"}
    if url.password:
        parts["password"] = url.password
    return psycopg.conninfo.make_conninfo(dbname="postgres", **parts)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"the service tests need PostgreSQL at {PG_SERVER} (set LABELMIX_TEST_POSTGRES to point elsewhere): {exc}"
        ) from exc


def create_pg_database() -> str:
    """A new, empty database with a unique name; returns its SQLAlchemy URL."""
    name = f"labelmix_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{PG_SERVER}/{name}"


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    with _admin() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def pg_execute(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on the database at `url` (a SQLAlchemy URL) outside the app; rows if any."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the app's process-wide caches ---------------------------------------------------------------


def clear_app_caches() -> None:
    """Forget cached settings, engines, dispatcher, Celery clients and Optuna storages (engines disposed)."""
    from app import dispatch
    from app.allocations.search import optuna_storage
    from app.config import get_settings
    from app.db.session import _session_factory, get_engine
    from worker.engine.settings import engine_settings

    if get_engine.cache_info().currsize:
        get_engine().dispose()
    if dispatch.get_dispatcher.cache_info().currsize and hasattr(dispatch.get_dispatcher(), "close"):
        dispatch.get_dispatcher().close()  # a test's queued jobs must not run against the next one's database
    caches = [get_settings, get_engine, _session_factory, dispatch.get_dispatcher, optuna_storage, engine_settings]
    if hasattr(dispatch, "celery_client"):  # one Celery client per broker URL
        caches.append(dispatch.celery_client)
    for cached in caches:
        cached.cache_clear()


def set_app_env(monkeypatch: pytest.MonkeyPatch, url: str, broker: str | None = None) -> None:
    monkeypatch.setenv("LABELMIX_DATABASE_URL", url)
    # No reads in a background thread while a test writes and deletes (test_warm_reads primes itself).
    monkeypatch.setenv("LABELMIX_PRIME_READS", "false")
    if broker is None:
        monkeypatch.delenv("LABELMIX_BROKER_URL", raising=False)
    else:
        monkeypatch.setenv("LABELMIX_BROKER_URL", broker)
    clear_app_caches()


def alembic_upgrade(url: str, revision: str = "head") -> None:
    """`alembic upgrade head` against `url`, as the deploy step runs it (settings from the env)."""
    from alembic import command
    from alembic.config import Config

    with pytest.MonkeyPatch.context() as mp:
        set_app_env(mp, url)
        command.upgrade(Config(str(ALEMBIC_INI)), revision)
    clear_app_caches()


def alembic_check(url: str) -> None:
    """`alembic check`: raises when the models and the migrated schema disagree."""
    from alembic import command
    from alembic.config import Config

    with pytest.MonkeyPatch.context() as mp:
        set_app_env(mp, url)
        command.check(Config(str(ALEMBIC_INI)))
    clear_app_caches()


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated Postgres database for this test session; dropped at the end."""
    url = create_pg_database()
    try:
        alembic_upgrade(url)
        yield url
    finally:
        clear_app_caches()
        drop_pg_database(url)


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A fresh Postgres database with no tables at all (not migrated); dropped after the test."""
    url = create_pg_database()
    try:
        yield url
    finally:
        clear_app_caches()
        drop_pg_database(url)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded database file migrated to head once a session; SQLite API tests start from a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "head.sqlite"
    alembic_upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def migrate() -> Callable[..., None]:
    """migrate(url, revision="head"): `alembic upgrade` against that database."""
    return alembic_upgrade


@pytest.fixture
def schema_check() -> Callable[[str], None]:
    """schema_check(url): `alembic check` against that database (raises on any drift)."""
    return alembic_check


@pytest.fixture
def sql_on() -> Callable[..., list[tuple]]:
    """sql_on(url, query, params=()): run raw SQL on a test Postgres database, outside the app."""
    return pg_execute


@pytest.fixture(scope="session")
def engine_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weak labels computed during the tests go here, not into the user's cache.

    The default weak labels of the built-in tasks the tests use are built here once, first: the
    default labeler fine-tunes a small model (minutes for cities on a CPU), which would otherwise
    land inside whichever request or worker first registers the task, and its time limit.
    """
    from worker.engine.settings import engine_settings
    from worker.engine.tasks import get_task
    from worker.engine.weak_labels import weak_labels

    # CI names a cache for the whole run: reuse it, so labels built by other tests count once.
    path = Path(os.environ.get("LABELMIX_CACHE_DIR") or tmp_path_factory.mktemp("labelmix-cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABELMIX_CACHE_DIR", str(path))
        engine_settings.cache_clear()
        for name in ("capitals", "cities"):
            weak_labels(get_task(name))
    engine_settings.cache_clear()
    return path


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, engine_cache_dir: Path) -> Iterator[Callable[..., None]]:
    """configure(url, broker=None): point the app (settings, engine, dispatcher) at this database."""
    monkeypatch.setenv("LABELMIX_CACHE_DIR", str(engine_cache_dir))

    def _configure(url: str, broker: str | None = None) -> None:
        set_app_env(monkeypatch, url, broker)

    yield _configure
    clear_app_caches()  # before monkeypatch restores the env, so nothing keeps this test's settings


@pytest.fixture
def clean_db(pg_url: str) -> str:
    """The session's database with every app table emptied: each test starts from nothing."""
    # DELETE, not TRUNCATE: on tables this small it is ~50x faster. Children first (foreign keys).
    pg_execute(pg_url, "; ".join(f"DELETE FROM {t}" for t in reversed(APP_TABLES)))
    return pg_url


@pytest.fixture
def make_api(configure, clean_db: str):
    """make_api(broker=None): a TestClient on a fresh app over the (emptied) session database."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    clients: list[TestClient] = []

    def _make(broker: str | None = None) -> TestClient:
        configure(clean_db, broker)
        client = TestClient(create_app())
        client.__enter__()  # runs the lifespan (the embedded start-up), as uvicorn would
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.__exit__(None, None, None)


DATABASES = ["postgres", "sqlite"]


@pytest.fixture
def api(request: pytest.FixtureRequest, tmp_path: Path):
    """The API, embedded (no broker), on Postgres; in a test marked `both_databases`, once on Postgres
    and once on a migrated SQLite file (pytest_generate_tests). Nothing here should train a model."""
    return api_on(request, tmp_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A module (or test) marked both_databases runs its `api` tests on each database the service
    # supports, so a backend difference (naive datetimes, JSON operators) cannot hide again.
    if "api" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("api", DATABASES, indirect=True)


def _sqlite_api(request: pytest.FixtureRequest, tmp_path: Path):
    from fastapi.testclient import TestClient

    from app.main import create_app

    path = tmp_path / "labelmix.sqlite"
    # SQLite's backup API, not a file copy: the migrated schema may still sit in the template's WAL.
    template, copy = sqlite3.connect(request.getfixturevalue("migrated_sqlite")), sqlite3.connect(path)
    try:
        template.backup(copy)
    finally:
        template.close()
        copy.close()
    url = f"sqlite:///{path}"
    request.getfixturevalue("configure")(url)
    client = TestClient(create_app())
    client.__enter__()
    request.addfinalizer(lambda: client.__exit__(None, None, None))
    return client


def api_on(request: pytest.FixtureRequest, tmp_path: Path):
    """For a fixture parametrized over DATABASES (unparametrized: Postgres): the API on that database
    (embedded; the SQLite file migrated under tmp_path), closed when the test ends."""
    if getattr(request, "param", "postgres") == "postgres":
        return request.getfixturevalue("make_api")()
    return _sqlite_api(request, tmp_path)


@pytest.fixture
def table_counts(clean_db: str) -> Callable[..., dict[str, int]]:
    """table_counts(*tables): row counts in the test database (default: every app table): the SQLite
    file the app is configured on, in a both_databases test's SQLite run, Postgres otherwise."""

    def _counts(*tables: str) -> dict[str, int]:
        url = os.environ.get("LABELMIX_DATABASE_URL", "")
        if not url.startswith("sqlite"):
            return {t: pg_execute(clean_db, f"SELECT count(*) FROM {t}")[0][0] for t in tables or APP_TABLES}
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                return {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                        for t in tables or APP_TABLES}
        finally:
            engine.dispose()

    return _counts
