"""Talking to a labelmix service from the CLI: a running one at a URL, or an embedded one started here."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed


class ServiceStartError(RuntimeError):
    """The service this command meant to start did not: its port was taken, or it exited."""


@retry(retry=retry_if_exception_type(httpx.HTTPError), stop=stop_after_delay(120), wait=wait_fixed(0.5), reraise=True)
def wait_until_up(client: httpx.Client, service: subprocess.Popen | None = None) -> None:
    """Until the service answers; with `service`, the one started here, stop at once if it exited."""
    if service is not None and service.poll() is not None:
        raise ServiceStartError(f"labelmix serve exited (code {service.returncode}) before it answered")
    client.get("/healthz").raise_for_status()


def check_port_free(port: int) -> None:
    """Refuse a port something already listens on: the command would otherwise talk to that service
    (another database) while the one it started fails to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ServiceStartError(
                f"port {port} is in use (another labelmix serve?): --port N starts this one elsewhere, "
                f"or --url http://127.0.0.1:{port} uses that service") from None


def start_service(port: int) -> subprocess.Popen:
    """`labelmix serve` as a child process (embedded unless the environment names a broker), on a port
    nothing else listens on."""
    check_port_free(port)
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
            wait_until_up(client, service)
            yield client
    finally:
        if service is not None:
            stop_service(service)
