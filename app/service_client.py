"""Talking to a labelmix service from the CLI: a running one at a URL, or an embedded one started here."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed


@retry(retry=retry_if_exception_type(httpx.HTTPError), stop=stop_after_delay(120), wait=wait_fixed(0.5), reraise=True)
def wait_until_up(client: httpx.Client) -> None:
    client.get("/healthz").raise_for_status()


def start_service(port: int) -> subprocess.Popen:
    """`labelmix serve` as a child process (embedded unless the environment names a broker)."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop_service(service: subprocess.Popen) -> None:
    if service.poll() is None:
        service.terminate()
        service.wait(timeout=30)


@contextmanager
def connect(url: str | None, port: int, timeout: float = 120) -> Iterator[httpx.Client]:
    """A client on the service at `url`, or on an embedded one started on `port` and stopped after."""
    service = None if url else start_service(port)
    try:
        with httpx.Client(base_url=url or f"http://127.0.0.1:{port}", timeout=timeout) as client:
            wait_until_up(client)
            yield client
    finally:
        if service is not None:
            stop_service(service)
