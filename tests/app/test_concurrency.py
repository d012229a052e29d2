"""Many clients at once: the API's database pool covers every request thread, so a burst waits for
threads, never for connections, and nothing fails."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from test_dashboard import server  # noqa: F401  (a fixture: uvicorn on the test database, trials stored)


def test_the_pool_covers_every_request_thread(configure, pg_url):
    import anyio.to_thread

    from app.db.session import get_engine

    configure(pg_url)
    pool = get_engine().pool
    threads = anyio.to_thread.current_default_thread_limiter  # FastAPI's sync routes run here
    tokens = anyio.run(lambda: _tokens(threads))
    assert pool.size() + pool._max_overflow >= tokens  # 5 + 10 against 40 before


async def _tokens(limiter_factory) -> int:
    return int(limiter_factory().total_tokens)


def test_a_hundred_concurrent_clients_get_no_errors(server):  # noqa: F811
    base, _ = server

    def list_trials(_: int) -> int:
        with httpx.Client(base_url=base, timeout=120) as client:
            return client.get("/trials", params={"limit": 100}).status_code

    with ThreadPoolExecutor(100) as clients:
        statuses = list(clients.map(list_trials, range(100)))
    assert statuses == [200] * 100


@pytest.fixture
def two_connections(monkeypatch):
    """The server's pool cut to two connections, far below its 40 request threads."""
    monkeypatch.setenv("LABELMIX_DB_POOL_SIZE", "2")
    monkeypatch.setenv("LABELMIX_DB_POOL_OVERFLOW", "0")


def test_requests_beyond_the_pool_wait_for_it_without_stalling_each_other(two_connections, server):  # noqa: F811
    # 100 in flight at once: before, routes waiting for a connection took every thread while the
    # requests holding the two connections waited for a thread to validate their responses, until the
    # pool timed out (30 s: 503s). Sessions are now admitted below the thread count.
    base, _ = server

    async def hundred_at_once() -> list[int]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
            responses = await asyncio.gather(*(client.get("/trials", params={"limit": 100}) for _ in range(200)))
        return [r.status_code for r in responses]

    started = time.perf_counter()
    assert asyncio.run(hundred_at_once()) == [200] * 200
    assert time.perf_counter() - started < 30  # never a pool timeout's wait


def test_serve_refuses_several_processes_in_embedded_mode(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app as cli
    from app.config import get_settings

    monkeypatch.delenv("LABELMIX_BROKER_URL", raising=False)
    monkeypatch.setenv("LABELMIX_DATABASE_URL", f"sqlite:///{tmp_path / 'labelmix.sqlite'}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "embedded mode" in result.output and "LABELMIX_BROKER_URL" in result.output
    assert not (tmp_path / "labelmix.sqlite").exists()  # refused before anything was created
