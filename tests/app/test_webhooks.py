"""Callbacks: an allocation that ends calls its callback_url once, signed with its team's secret,
retries a receiver that fails for the time being, and never makes the request that ended it wait.

The allocations end at once, with nothing trained: their opening points' trials are stored done
beforehand (rows written by the service's own code, bench.service.measurements), so POST /allocate is
answered from them. The receiver is a real HTTP server on this machine; the service runs embedded
over Postgres, delivering from its own threads. Loopback is not a public address: the operator's
allow-list (LABELMIX_CALLBACK_ALLOW_NETWORKS) lets these receivers in; test_callback_targets.py
checks what is refused without it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
import redis
from conftest import free_port

from app.service_client import start_service, stop_service, wait_until_up

CALL_TIMEOUT_S = 60  # generous: the machine is shared; nothing here is timed
BROKER = "redis://127.0.0.1:6379/12"  # a Redis database of this file's own (see test_celery_worker's)
REQUEST = {"task": "cities", "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"], "max_trials": 2,
           "seeds": [0], "recipe": "fast"}


@pytest.fixture(autouse=True)
def callbacks_may_reach_loopback(monkeypatch):
    monkeypatch.setenv("LABELMIX_CALLBACK_ALLOW_NETWORKS", "127.0.0.0/8")


class Receiver:
    """An HTTP server that records each call (headers and raw body) and answers the statuses it is
    given in turn (the last one from then on), with `body`. Calls are held until `release` is set."""

    def __init__(self, statuses: list[int], body: bytes = b""):
        self.statuses, self.calls, self.answered, self.body = list(statuses), [], 0, body
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.calls.append((dict(self.headers), raw))
                    status = receiver.statuses[min(len(receiver.calls), len(receiver.statuses)) - 1]
                    receiver.arrived.notify_all()
                receiver.release.wait(CALL_TIMEOUT_S)
                receiver.answered += 1  # before the answer goes out: a caller waiting on it sees the count
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *_) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/labelmix-hook"

    def wait_for_calls(self, n: int) -> list[tuple[dict, bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.calls) >= n, CALL_TIMEOUT_S), self.calls
            return list(self.calls)


@pytest.fixture
def receiver():
    started: list[Receiver] = []

    def start(*statuses: int, body: bytes = b"") -> Receiver:
        r = Receiver(list(statuses) or [204], body)
        threading.Thread(target=r.server.serve_forever, daemon=True).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.release.set()
        r.server.shutdown()
        r.server.server_close()


def store_opening_trials(budgets: list[float]) -> None:
    """Done trials for every point REQUEST opens with at these budgets: an allocation for them ends at once."""
    from sqlalchemy import select
    from sqlalchemy.dialects.postgresql import insert

    from app.allocations.lifecycle import prepare
    from app.allocations.sampler import opening_params
    from app.allocations.schemas.allocations import AllocationRequest
    from app.db.models import Task, Trial
    from app.db.session import session_scope
    from bench.service.measurements import done_trial_values
    from worker.engine.spec import Method

    rng = np.random.default_rng(0)
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == "cities")).one()
        for budget in budgets:
            request, space = prepare(task, AllocationRequest(**REQUEST, budget=budget), model_is_causal=False)
            for params in opening_params(space, request.max_trials):
                point = space.point_for(Method(params["method"]), params["weak_share"])
                for seed in request.seeds:
                    spec = space.spec(point, seed, task=task.name, weak_labeler=request.weak_labeler)
                    row = done_trial_values(task, spec, 0.7, {"torch": "none: written by the test"}, rng)
                    session.execute(insert(Trial).values(**row).on_conflict_do_nothing(index_elements=["key"]))


@pytest.fixture
def stored(api):
    """store(*budgets): registers cities and stores REQUEST's opening trials at those budgets."""
    assert api.post("/tasks", data={"dataset": "cities"}).status_code in (200, 201)
    return lambda *budgets: store_opening_trials(list(budgets))


@pytest.fixture
def callbacks_worker(clean_db, engine_cache_dir, tmp_path):
    """A Celery worker on the callbacks queue only, started as README's "Distributed" starts it."""
    redis.Redis.from_url(BROKER).flushdb()
    env = {**os.environ, "LABELMIX_DATABASE_URL": clean_db, "LABELMIX_BROKER_URL": BROKER,
           "LABELMIX_CACHE_DIR": str(engine_cache_dir), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "callbacks-worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", "callbacks", "--pool",
             "threads", "-c", "4", "--hostname", f"hooks-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
             "--loglevel", "INFO"], env=env, stdout=out, stderr=subprocess.STDOUT)
    yield log
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    redis.Redis.from_url(BROKER).flushdb()


def callback_row(allocation_id: str, timeout_s: float = CALL_TIMEOUT_S) -> dict:
    """The allocation's callback columns, once delivered or failed (or as they are at the timeout)."""
    from app.db.models import Allocation
    from app.db.session import session_scope

    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope() as session:
            a = session.get(Allocation, allocation_id)
            row = {"state": a.callback_state, "attempts": a.callback_attempts, "error": a.callback_error}
        if row["state"] in ("delivered", "failed") or time.monotonic() > deadline:
            return row
        time.sleep(0.1)


def verifies(headers: dict, raw: bytes, secret: str) -> bool:
    """The README's check, as a receiver writes it."""
    signed = headers["X-Labelmix-Timestamp"].encode() + b"." + raw
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Labelmix-Signature"])


@pytest.mark.both_databases
def test_an_ended_allocation_calls_once_signed_and_does_not_wait_for_the_receiver(api, stored, receiver):
    from app.allocations import webhooks

    stored(6)
    hook = receiver(204)
    hook.release.clear()  # the receiver holds the call: the request must not be waiting on it
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "label": "hooked", "callback_url": hook.url})
    assert response.status_code == 200 and response.json()["status"] == "done", response.text
    assert hook.answered == 0  # answered after the request, so the request did not wait for it
    allocation = response.json()
    hook.wait_for_calls(1)
    hook.release.set()
    assert callback_row(allocation["id"]) == {"state": "delivered", "attempts": 1, "error": None}

    assert webhooks.deliver(allocation["id"]) is None  # claimed already: a second end sends nothing
    assert len(hook.calls) == 1

    headers, raw = hook.calls[0]
    secret = api.get("/webhook-secret").json()["secret"]
    assert verifies(headers, raw, secret)
    assert not verifies(headers, raw.replace(b"done", b"fail"), secret)
    body = json.loads(raw)
    assert body["allocation_id"] == allocation["id"] and body["status"] == "done"
    assert body["task"] == "cities" and body["label"] == "hooked" and body["sweep_id"] is None
    assert body["recommendation"] == allocation["recommendation"] and body["error"] is None
    assert headers["X-Labelmix-Delivery"] == allocation["id"]

    rotated = api.post("/webhook-secret/rotate").json()["secret"]
    assert rotated != secret and api.get("/webhook-secret").json()["secret"] == rotated
    assert not verifies(headers, raw, rotated)


@pytest.mark.both_databases
def test_a_receiver_that_fails_once_is_called_again_and_the_attempts_are_stored(api, stored, receiver):
    stored(6)
    hook = receiver(500, 200)
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": hook.url})
    assert response.status_code == 200, response.text
    assert callback_row(response.json()["id"]) == {"state": "delivered", "attempts": 2, "error": None}
    shown = api.get(f"/allocations/{response.json()['id']}").json()["callback"]
    assert shown == {"url": hook.url, "state": "delivered", "attempts": 2, "error": None}
    calls = hook.wait_for_calls(2)
    assert len(calls) == 2
    secret = api.get("/webhook-secret").json()["secret"]
    assert all(verifies(headers, raw, secret) for headers, raw in calls)
    assert calls[0][1] == calls[1][1]  # the same body, signed afresh


@pytest.mark.both_databases
def test_a_receiver_that_refuses_is_not_called_again(api, stored, receiver):
    stored(6)
    hook = receiver(404)
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": hook.url})
    row = callback_row(response.json()["id"])
    assert row["state"] == "failed" and row["attempts"] == 1 and row["error"].startswith("ReceiverRefused: HTTP 404")
    assert len(hook.calls) == 1


@pytest.mark.both_databases
def test_each_allocation_of_a_sweep_calls_with_the_sweep_id(api, stored, receiver):
    stored(6, 12)
    hook = receiver(204)
    response = api.post("/allocate", json={**REQUEST, "budgets": [6, 12], "callback_url": hook.url})
    assert response.status_code == 200 and response.json()["status"] == "done", response.text
    sweep = response.json()
    for allocation in sweep["allocations"]:
        assert callback_row(allocation["id"])["state"] == "delivered"
    bodies = [json.loads(raw) for _, raw in hook.wait_for_calls(2)]
    assert sorted(b["allocation_id"] for b in bodies) == sorted(a["id"] for a in sweep["allocations"])
    assert {b["sweep_id"] for b in bodies} == {sweep["id"]}


@pytest.mark.both_databases
@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "file:///etc/passwd", "not a url"])
def test_a_callback_url_that_is_not_http_is_422_naming_the_field(api, url):
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": url})
    assert response.status_code == 422, response.text
    assert any(e["loc"] == ["body", "callback_url"] for e in response.json()["detail"]), response.json()


def test_with_a_broker_the_callbacks_worker_delivers(make_api, callbacks_worker, receiver):
    api = make_api(broker=BROKER)
    assert api.post("/tasks", data={"dataset": "cities"}).status_code in (200, 201)
    store_opening_trials([6])
    hook = receiver(503, 204)
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": hook.url})
    assert response.status_code == 200 and response.json()["status"] == "done", response.text
    row = callback_row(response.json()["id"], timeout_s=180)  # the worker may still be starting
    assert row == {"state": "delivered", "attempts": 2, "error": None}, callbacks_worker.read_text()[-3000:]
    (_, first), (_, second) = hook.wait_for_calls(2)
    assert first == second and json.loads(first)["allocation_id"] == response.json()["id"]


@pytest.mark.both_databases
def test_a_receivers_answer_is_never_stored_or_shown(api, stored, receiver, monkeypatch):
    # One attempt (give up at once): the row keeps the status, never the page the receiver answered.
    monkeypatch.setenv("LABELMIX_CALLBACK_GIVE_UP_AFTER_S", "0")
    from app.config import get_settings

    get_settings.cache_clear()
    stored(6)
    hook = receiver(500, body=b"<h1>internal admin page: db password hunter2</h1>")
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": hook.url})
    row = callback_row(response.json()["id"])
    assert row == {"state": "failed", "attempts": 1, "error": "ReceiverBusy: HTTP 500"}
    shown = api.get(f"/allocations/{response.json()['id']}").text
    assert "hunter2" not in shown and "admin" not in shown


class TricklingReceiver:
    """A receiver that answers its status line, then one byte of its headers a second, for ever: each
    read gets data well within any read timeout, so only a deadline on the whole attempt ends it."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/trickle"
        self.connections = 0
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stop.wait(1.0):
                    conn.sendall(b"X")
            except OSError:  # the caller gave up and closed the connection
                pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def short_deadlines(monkeypatch):
    """Each attempt ends by 2 s, and none starts past 3 s after the first (set before any worker starts)."""
    monkeypatch.setenv("LABELMIX_CALLBACK_ATTEMPT_DEADLINE_S", "2")
    monkeypatch.setenv("LABELMIX_CALLBACK_GIVE_UP_AFTER_S", "3")


def test_a_trickling_receiver_fails_within_its_deadline_while_other_callbacks_go_out(
    short_deadlines, make_api, callbacks_worker, receiver
):
    api = make_api(broker=BROKER)  # the worker was started with these settings too (callbacks_worker's env)
    assert api.post("/tasks", data={"dataset": "cities"}).status_code in (200, 201)
    store_opening_trials([6])
    trickle, hook = TricklingReceiver(), receiver(204)
    try:
        slow = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": trickle.url}).json()
        deadline = time.monotonic() + 180  # the worker may still be starting
        while trickle.connections == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert trickle.connections == 1, callbacks_worker.read_text()[-3000:]
        started = time.monotonic()
        # Another allocation's callback is delivered while the trickling one is still being tried.
        fast = api.post("/allocate", json={**REQUEST, "budget": 6, "label": "other", "callback_url": hook.url}).json()
        assert callback_row(fast["id"])["state"] == "delivered"
        row = callback_row(slow["id"], timeout_s=30)
        took = time.monotonic() - started
    finally:
        trickle.close()
    assert row["state"] == "failed" and "Timeout" in row["error"], row
    assert row["attempts"] <= 2 and trickle.connections == row["attempts"]
    # The first attempt began before `started`; every attempt ends by its deadline, the last starts by 3 s.
    assert took < 3 + 2 + 1.5, took


def test_a_callback_whose_sender_was_killed_is_delivered_after_restart(configure, clean_db, stored_trials_db, receiver):
    """kill -9 of the embedded service mid-delivery: the row stays `sending`; the next start sends it again."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hook = receiver(204)
    hook.release.clear()  # the first call is held: the service dies while it waits for the answer
    service = start_service(port)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            wait_until_up(client)
            stored_trials_db(client, 6)
            allocation = client.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": hook.url}).json()
            hook.wait_for_calls(1)
            assert callback_row(allocation["id"], timeout_s=0)["state"] == "sending"
            service.send_signal(signal.SIGKILL)
            service.wait(timeout=30)
            hook.release.set()  # the held call's connection is gone: its answer reaches no one

            service = start_service(port)
            wait_until_up(client)
            assert callback_row(allocation["id"]) == {"state": "delivered", "attempts": 1, "error": None}
    finally:
        stop_service(service)
    calls = hook.wait_for_calls(2)
    assert len(calls) == 2 and calls[0][1] == calls[1][1]  # the same body: the receiver dedupes on the id
    assert calls[0][0]["X-Labelmix-Delivery"] == calls[1][0]["X-Labelmix-Delivery"] == allocation["id"]


@pytest.fixture
def stored_trials_db(configure, clean_db):
    """store(client, *budgets) for a service in another process on the session database: register
    cities over HTTP, then write the opening trials from here."""
    configure(clean_db)

    def store(client: httpx.Client, *budgets: float) -> None:
        assert client.post("/tasks", data={"dataset": "cities"}).status_code in (200, 201)
        store_opening_trials(list(budgets))

    return store


@pytest.mark.both_databases
def test_only_a_stale_sending_claim_is_taken_back(api, stored, receiver):
    from datetime import timedelta

    from sqlalchemy import update

    from app.allocations import webhooks
    from app.db.base import utcnow
    from app.db.models import Allocation
    from app.db.session import session_scope

    stored(6)
    hook = receiver(204)
    ids = [api.post("/allocate", json={**REQUEST, "budget": 6, "label": str(i), "callback_url": hook.url}).json()["id"]
           for i in range(2)]
    for i in ids:
        callback_row(i)
    fresh, stale = ids
    claimed_long_ago = utcnow() - timedelta(seconds=webhooks.stale_claim_after_s() + 60)
    with session_scope() as session:
        session.execute(update(Allocation).where(Allocation.id == fresh).values(callback_state="sending",
                                                                                callback_claimed_at=utcnow()))
        session.execute(update(Allocation).where(Allocation.id == stale).values(callback_state="sending",
                                                                                callback_claimed_at=claimed_long_ago))
    with session_scope() as session:
        assert webhooks.reclaim_stale(session) == [stale]
    with session_scope() as session:
        assert session.get(Allocation, fresh).callback_state == "sending"
        assert session.get(Allocation, stale).callback_state == "pending"
