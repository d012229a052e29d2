"""How fast the API answers from a store of 10k or 100k trials: `python -m bench.service.store`.

A benchmark, not a test (nothing here runs under pytest). `seed` builds a Postgres database of
realistic done trials of the built-in task `cities` (bench.service.seed): many budgets, weak shares,
methods, two models, three seeds, mostly the `fast` recipe plus a few variants; one finished
allocation of 25 points x 2 seeds to read; and the trials that answer one POST /allocate at once.
`run` starts the service the way the README runs it against Postgres (`labelmix serve`, embedded:
one process, no Celery; a request stored trials answer enqueues nothing), then, per endpoint and per
concurrency level, sends the requests with exactly that many in flight and reports per-request
latency (p50/p95/p99), errors (non-2xx or an exception; for POST /allocate anything but 200), requests
per second and response bytes. The frontier is asked warm (one URL again and again) and cold (each
request a different weak_cost, so no cache can answer it); the first frontier request after start
is reported on its own.

    export LABELMIX_CACHE_DIR=/root/.cache/labelmix-test HF_HUB_OFFLINE=1
    python -m bench.service.store seed --trials 10000 --database labelmix_bench_10k
    python -m bench.service.store run --database labelmix_bench_10k --concurrency 1,10,100 --requests 200 \\
        --cold-requests 100 --json .bench/run-10k.json                      # about 6 minutes on 2 cores
    python -m bench.service.store seed --trials 100000 --database labelmix_bench_100k
    python -m bench.service.store run --database labelmix_bench_100k --concurrency 1,10,100 --requests 200 \\
        --cold-requests 100 --json .bench/run-100k.json

`seed` drops the database first, so both commands can be rerun; `seed` writes the read allocation's
id and the POST /allocate body to .bench/<database>.json, which `run` reads (the server's log goes
to .bench/<database>-server.log). A cold frontier costs a fraction of a second of CPU at 10k trials:
`--cold-requests` keeps those levels short. `--server-workers N --broker-url redis://...` serves
with N API processes (distributed mode; the benchmark needs no Celery worker).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Annotated, Optional

import httpx
import numpy as np
import typer

from . import after_finish
from . import seed as seeding

app = typer.Typer(help=__doc__.split("\n\n")[0], no_args_is_help=True, add_completion=False)

READY_TIMEOUT_S = 120
REQUEST_TIMEOUT_S = 300
FRONTIER = "/frontier/cities?weak_cost={weak_cost}&gold_cost=1"
WARM_WEAK_COST = 0.1


@app.command()
def seed(
    trials: Annotated[int, typer.Option(min=1, help="trials in the database, all done")] = 10_000,
    database: Annotated[str, typer.Option(help="dropped and created again")] = "labelmix_bench_10k",
    server: Annotated[str, typer.Option(help="Postgres, without a database name")] = seeding.DEFAULT_SERVER,
    build_weak_labels: Annotated[bool, typer.Option(
        help="train cities' weak labeler first if LABELMIX_CACHE_DIR lacks it (minutes); without, its "
             "registration's build is skipped and the task row says the labels are not built")] = False,
    rng_seed: Annotated[int, typer.Option(help="the made-up accuracies' random seed")] = 0,
) -> None:
    """Drop and create the database, migrate it, register cities, store the trials and allocations."""
    started = time.perf_counter()
    seeded = seeding.seed_database(trials, database, server, build_weak_labels, rng_seed)
    path = seeded.write()
    typer.echo(f"seeded {database}: {seeded.trials} done trials of task {seeding.TASK} in "
               f"{time.perf_counter() - started:.1f} s")
    for label, n in seeded.recipes.items():
        typer.echo(f"  recipe {label!r}: {n} trials")
    if seeded.weak_label_builds_skipped:
        typer.echo(f"  weak labels not cached in LABELMIX_CACHE_DIR: their build was skipped for "
                   f"{', '.join(seeded.weak_label_builds_skipped)} (--build-weak-labels trains them)")
    typer.echo(f"  allocation to read: {seeded.allocation_id}")
    typer.echo(f"  POST /allocate body: {json.dumps(seeded.allocate_request)}")
    typer.echo(f"  written to {path}")


@dataclass(frozen=True)
class Endpoint:
    """One benchmarked request; `path(i)` for the i-th request (a cold one differs every time)."""

    name: str
    path: Callable[[int], str]
    body: dict | None = None
    ok: frozenset[int] = frozenset(range(200, 300))
    cold: bool = False  # every request computed afresh: seconds each at 10k trials (--cold-requests)
    headers: dict | None = None

    def send(self, client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
        if self.body is None:
            return client.get(self.path(i), headers=self.headers)
        return client.post(self.path(i), json=self.body, headers=self.headers)


def endpoints(allocation_id: str, allocate_body: dict, frontier_etag: str) -> list[Endpoint]:
    """The reads the service answers from stored trials. Cold URLs draw from one counter across
    concurrency levels, so a later level never repeats an earlier level's URL."""
    cold = count(1)

    def frontier(warm: bool, model: str = "") -> Callable[[int], str]:
        suffix = f"&model={model}" if model else ""
        if warm:
            return lambda _: FRONTIER.format(weak_cost=WARM_WEAK_COST) + suffix
        return lambda _: FRONTIER.format(weak_cost=f"{WARM_WEAK_COST + next(cold) * 1e-6:.6f}") + suffix

    return [
        Endpoint("frontier warm", frontier(True)),
        # What the dashboard sends again: the ETag it holds, answered 304 with no body while nothing changed.
        Endpoint("frontier revalidated", frontier(True), ok=frozenset({304}), headers={"If-None-Match": frontier_etag}),
        Endpoint("frontier cold", frontier(False), cold=True),
        Endpoint("frontier model warm", frontier(True, "minilm-l6")),
        Endpoint("frontier model cold", frontier(False, "minilm-l6"), cold=True),
        Endpoint("marginal", lambda _: "/frontier/cities/marginal?weak_cost=0.1&gold_cost=1&budget=64"),
        # 202 would mean the stored trials did not answer it: training, not a read.
        Endpoint("allocate (stored)", lambda _: "/allocate", allocate_body, frozenset({200})),
        Endpoint("allocation 50 trials", lambda _: f"/allocations/{allocation_id}"),
        Endpoint("trials limit=100", lambda _: "/trials?limit=100"),
    ]


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it: from sending to the last byte of the body."""

    latency_s: float
    status: int | None  # None: the request raised (connection refused, timeout)
    n_bytes: int


async def timed(endpoint: Endpoint, client: httpx.AsyncClient, i: int) -> Sample:
    started = time.perf_counter()
    try:
        response = await endpoint.send(client, i)
    except httpx.HTTPError:
        return Sample(time.perf_counter() - started, None, 0)
    return Sample(time.perf_counter() - started, response.status_code, len(response.content))


async def load(base_url: str, endpoint: Endpoint, n: int, concurrency: int) -> tuple[list[Sample], float]:
    """n requests, exactly `concurrency` in flight (as many clients, each waiting for its answer)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    indices = iter(range(n))  # shared: each request is sent by one client
    samples: list[Sample] = []
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

        async def one_client() -> None:
            for i in indices:
                samples.append(await timed(endpoint, client, i))

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        return samples, time.perf_counter() - started


def summary(endpoint: Endpoint, concurrency: int, samples: list[Sample], wall_s: float) -> dict:
    ms = np.array([s.latency_s for s in samples]) * 1000
    ok = [s for s in samples if s.status in endpoint.ok]
    return {
        "endpoint": endpoint.name, "concurrency": concurrency, "n": len(samples),
        "errors": len(samples) - len(ok),
        "statuses": dict(Counter(str(s.status or "exception") for s in samples)),
        "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
        "requests_per_s": len(samples) / wall_s,
        "bytes": int(np.median([s.n_bytes for s in ok])) if ok else 0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_ready(response: httpx.Response) -> bool:
    """/readyz's verdict, but for Celery workers: the benchmark sends them nothing, so distributed mode
    (--server-workers over 1) is ready with its database and broker up and no worker answering."""
    checks = response.json().get("checks", {})
    return response.status_code == 200 or (checks.get("database") == "ok" and checks.get("broker") == "ok")


def wait_ready(base_url: str, server: subprocess.Popen, log_path: Path) -> float:
    """Seconds until the server is ready; fails with the server's log if it exits or never is."""
    started = time.perf_counter()
    while time.perf_counter() - started < READY_TIMEOUT_S:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            if is_ready(httpx.get(f"{base_url}/readyz", timeout=5)):
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready after {READY_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM (uvicorn finishes its requests and exits), then SIGKILL if it will not."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def serving(database_url: str, log_path: Path, workers: int = 1, broker_url: str | None = None,
            env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`labelmix serve` on a free port against the database (`env` on top of this process's), ready,
    until the block ends, however it ends (an error, Ctrl-C): its URL and process. Its output goes to
    log_path. Without a broker it is embedded (one process, the README's single-machine service);
    several processes need one (distributed mode)."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("labelmix")), "serve", "--port", str(port),
               "--workers", str(workers)]
    env = {**os.environ, "LABELMIX_DATABASE_URL": database_url, "HF_HUB_OFFLINE": "1", **(env or {})}
    env.pop("LABELMIX_BROKER_URL", None)
    if broker_url:
        env["LABELMIX_BROKER_URL"] = broker_url
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready_s = wait_ready(base_url, server, log_path)
        typer.echo(f"{' '.join(command)} (LABELMIX_DATABASE_URL={database_url}, LABELMIX_BROKER_URL="
                   f"{broker_url or ''}): ready in {ready_s:.1f} s", err=True)
        yield base_url, server
    finally:
        stop(server)


@contextmanager
def served(database_url: str, log_path: Path, workers: int, broker_url: str | None) -> Iterator[str]:
    """serving's URL alone."""
    with serving(database_url, log_path, workers, broker_url) as (base_url, _):
        yield base_url


def stored_answer_ready(body: dict) -> tuple[int, int]:
    """(stored done trials, trials needed) for the POST /allocate body: the service's own keys."""
    from sqlalchemy import func, select

    from app.db.models import Trial, TrialStatus
    from app.db.session import session_scope
    from app.tasks.registry import get_task_row

    with session_scope() as session:
        keys = seeding.request_trial_keys(get_task_row(session, seeding.TASK), body)
        stored = select(func.count()).where(Trial.key.in_(keys), Trial.status == TrialStatus.done)
        done = session.scalar(stored)
    return done, len(keys)


def trial_counts() -> dict[str, int]:
    from sqlalchemy import func, select

    from app.db.models import Trial
    from app.db.session import session_scope

    with session_scope() as session:
        return dict(session.execute(select(Trial.status, func.count()).group_by(Trial.status)).all())


def print_table(rows: list[dict], true_cold: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="labelmix API over stored trials (latency in ms)")
    for column in ("endpoint", "conc", "n", "errors", "p50", "p95", "p99", "max", "req/s", "bytes"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for r in rows:
        latencies = (f"{r[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        table.add_row(r["endpoint"], str(r["concurrency"]), str(r["n"]), str(r["errors"]), *latencies,
                      f"{r['requests_per_s']:.1f}", str(r["bytes"]))
    console = Console(width=120)
    console.print(f"first frontier request after start (true cold): {true_cold['ms']:.1f} ms, "
                  f"status {true_cold['status']}, {true_cold['bytes']} bytes")
    console.print(table)
    for r in rows:
        if r["errors"]:
            console.print(f"errors: {r['endpoint']} at {r['concurrency']}: statuses {r['statuses']}")


def measure(base_url: str, allocation_id: str, allocate_body: dict, frontier_etag: str, levels: list[int],
            requests: int, cold_requests: int) -> list[dict]:
    rows = []
    for endpoint in endpoints(allocation_id, allocate_body, frontier_etag):
        for concurrency in levels:
            n = cold_requests if endpoint.cold else requests
            samples, wall_s = asyncio.run(load(base_url, endpoint, n, concurrency))
            rows.append(summary(endpoint, concurrency, samples, wall_s))
            r = rows[-1]
            typer.echo(f"  {endpoint.name} c={concurrency}: p50 {r['p50_ms']:.1f} ms, "
                       f"{r['requests_per_s']:.1f}/s, {r['errors']} errors ({wall_s:.1f} s)", err=True)
    return rows


def after_finishing(base_url: str, rounds: int) -> dict:
    """The warm frontier URL asked once after each of `rounds` trials finishes (after_finish)."""
    endpoint = Endpoint("frontier after a trial finishes", lambda _: FRONTIER.format(weak_cost=WARM_WEAK_COST))
    samples = [Sample(latency_s, status, n_bytes)
               for latency_s, status, n_bytes in after_finish.measure(base_url, endpoint.path(0), rounds)]
    row = summary(endpoint, 1, samples, sum(s.latency_s for s in samples))
    typer.echo(f"  {endpoint.name}: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms, "
               f"{row['errors']} errors", err=True)
    return row


def true_cold_request(base_url: str) -> dict:
    started = time.perf_counter()
    response = httpx.get(base_url + FRONTIER.format(weak_cost=WARM_WEAK_COST), timeout=REQUEST_TIMEOUT_S)
    return {"ms": (time.perf_counter() - started) * 1000, "status": response.status_code,
            "bytes": len(response.content), "etag": response.headers.get("etag", "")}


def concurrency_levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise typer.BadParameter(f"takes comma-separated positive integers, got {text!r}")
    return levels


@app.command()
def run(
    database: Annotated[str, typer.Option(help="a database `seed` wrote")] = "labelmix_bench_10k",
    concurrency: Annotated[str, typer.Option(help="comma-separated requests in flight")] = "1,10,100",
    requests: Annotated[int, typer.Option(min=1, help="requests per endpoint and concurrency level")] = 200,
    cold_requests: Annotated[Optional[int], typer.Option(
        min=1, help="requests per level of the cold frontier endpoints (default: --requests)")] = None,
    server: Annotated[str, typer.Option(help="Postgres, without a database name")] = seeding.DEFAULT_SERVER,
    server_workers: Annotated[int, typer.Option(min=1, help="API processes (labelmix serve --workers)")] = 1,
    broker_url: Annotated[Optional[str], typer.Option(
        help="serve distributed with this broker (needed for --server-workers over 1; nothing is sent to it "
             "when POST /allocate is answered from stored trials), e.g. redis://127.0.0.1:6379/15")] = None,
    finish_rounds: Annotated[int, typer.Option(
        min=0, help="then, this many times, finish one trial of the task and read the frontier once (each adds a "
                    "done trial to the database)")] = 50,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="also write the numbers here")] = None,
) -> None:
    """Serve the seeded database and measure each endpoint at each concurrency level."""
    levels = concurrency_levels(concurrency)
    if server_workers > 1 and not broker_url:
        raise typer.BadParameter("several API processes run distributed only: give --broker-url too")
    seeded = json.loads((seeding.BENCH_DIR / f"{database}.json").read_text())
    url = seeding.database_url(server, database)
    seeding.use_database(url)
    done, needed = stored_answer_ready(seeded["allocate_request"])
    if done != needed:  # it would train in the server (embedded) and measure that instead
        raise typer.BadParameter(f"only {done} of the {needed} trials POST /allocate needs are stored: "
                                 "seed again")
    before = trial_counts()
    started = time.perf_counter()
    with served(url, seeding.BENCH_DIR / f"{database}-server.log", server_workers, broker_url) as base_url:
        cold = true_cold_request(base_url)
        rows = measure(base_url, seeded["allocation_id"], seeded["allocate_request"], cold["etag"], levels, requests,
                       cold_requests or requests)
        if finish_rounds:
            rows.append(after_finishing(base_url, finish_rounds))
    after = trial_counts()
    print_table(rows, cold)
    typer.echo(f"trials by status before {before}, after {after}; wall {time.perf_counter() - started:.1f} s")
    if json_path:
        numbers = {"database": database, "trials": before, "server_workers": server_workers,
                   "true_cold": cold, "results": rows}
        json_path.write_text(json.dumps(numbers, indent=2) + "\n")


if __name__ == "__main__":
    app()
