"""The CLI's own service: `labelmix demo` and `labelmix study` start one on --port. When that port
was taken (here: the study stack's `labelmix serve`), the child failed to bind while the command
talked to the service already there, another database, and posted its allocations to it. Now a
taken port is refused before anything is sent, naming --port, and a child that exits stops the wait."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import free_port

from app.service_client import ServiceStartError, check_port_free, wait_until_up

LABELMIX = str(Path(sys.executable).parent / "labelmix")


class OtherService(BaseHTTPRequestHandler):
    """Answers like a healthy labelmix on /healthz and records anything posted to it."""

    posted: list[str] = []

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def do_POST(self):  # noqa: N802
        OtherService.posted.append(self.path)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def taken_port():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), OtherService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    OtherService.posted = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command", [["demo"], ["study", "--budgets", "16", "--seeds", "0"]])
def test_a_taken_port_is_refused_before_anything_is_sent(taken_port, tmp_path, command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELMIX_")}
    env.update(LABELMIX_DATABASE_URL=f"sqlite:///{tmp_path / 'own.sqlite'}", LABELMIX_CACHE_DIR=str(tmp_path))
    done = subprocess.run([LABELMIX, *command, "--port", str(taken_port)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {taken_port} is in use" in done.stderr and "--port" in done.stderr
    assert OtherService.posted == []  # the other service got nothing
    assert not (tmp_path / "own.sqlite").exists()  # and no service of its own was started


def test_a_free_port_passes_and_a_port_just_released_too():
    port = free_port()
    check_port_free(port)
    with pytest.raises(ServiceStartError, match=f"port {port} is in use"):
        with socket.create_server(("127.0.0.1", port)):
            check_port_free(port)
    check_port_free(port)  # closed again: free


def test_a_service_that_exits_stops_the_wait_at_once():
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait(timeout=30)
    started = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ServiceStartError, match="exited \\(code 3\\)"):
            wait_until_up(client, exited)
    assert time.monotonic() - started < 5  # not the 120 s an unanswered port is waited for
