"""Seeding a benchmark database with realistic stored trials, written the way the service writes them.

Every row comes from the service's own code: the task registered by `get_or_register_task`,
points from the SearchSpace `allocations.prepare` builds, rows as bench.service.measurements writes them
(`trials.new_trial_values`, a `TrialResult`), the read allocation created by `allocations.create`
and finished (its recommendation) by `allocations._finish`. Only the measurements are made up:
nothing is trained, so 100k trials take minutes, not GPU-years.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from unittest import mock

import numpy as np
from sqlalchemy import create_engine, func, insert, select, text, update

from app.allocations.schemas.allocations import AllocationRequest
from app.allocations.search import ICL_SHOT_CHOICES, SHARE_STEP, Point, SearchSpace
from app.db.models import Task, Trial
from worker.engine.spec import Method

from .measurements import done_trial_values, expected_accuracy, seed_sd

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BENCH_DIR = Path(__file__).resolve().parents[2] / ".bench"
TASK = "cities"
WEAK_COST, GOLD_COST = 0.1, 1.0
BULK_SEEDS = (0, 1, 2)
BATCH = 2000
SHARES = tuple(round(i * SHARE_STEP, 2) for i in range(round(1 / SHARE_STEP) + 1))
MAX_POINTS = 200  # AllocationRequest's bound on max_trials
# The read allocation: 25 points x 2 seeds at $256, every method minilm-l6 can run.
READ_ALLOCATION = {"task": TASK, "model": "minilm-l6", "budget": 256.0, "weak_cost": WEAK_COST,
                   "gold_cost": GOLD_COST, "seeds": [0, 1], "max_trials": 25, "recipe": "fast"}
# The POST /allocate request the stored trials answer in full (max_trials is set to its first grid).
ALLOCATE_REQUEST = {"task": TASK, "model": "minilm-l6", "budget": 64.0, "weak_cost": WEAK_COST,
                    "gold_cost": GOLD_COST, "methods": ["seq_sft", "uncertainty_sft"], "seeds": [0],
                    "recipe": "fast"}


@dataclass(frozen=True)
class Family:
    """Trials that share a frontier: a model and a recipe with its overrides.

    `every`: seeded at every n-th budget of the grid, so the fast recipe dominates (as it does in a
    real store) while a few variants exist for the `recipes` list and recipe selection.
    `shift`: what the variant costs in accuracy (fewer steps train less).
    """

    model: str
    recipe: str
    overrides: tuple[tuple[str, int], ...] = ()
    every: int = 1
    shift: float = 0.0


FAMILIES = tuple(
    family
    for model in ("minilm-l6", "smollm2-135m")
    for family in (
        Family(model, "fast"),
        Family(model, "fast", (("max_steps_per_stage", 6),), every=10, shift=-0.04),
        Family(model, "fast", (("max_steps_per_stage", 24),), every=10, shift=-0.015),
        Family(model, "paper", every=10, shift=-0.01),
    )
)


@dataclass
class Seeded:
    """What one seed run wrote, for the printout and for `run` (.bench/<database>.json)."""

    database: str
    url: str
    trials: int = 0
    task_id: int = 0
    allocation_id: str = ""
    allocate_request: dict = field(default_factory=dict)
    recipes: dict[str, int] = field(default_factory=dict)
    weak_label_builds_skipped: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def write(self) -> Path:
        BENCH_DIR.mkdir(exist_ok=True)
        path = BENCH_DIR / f"{self.database}.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def database_url(server: str, database: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise ValueError(f"database name {database!r}: use lowercase letters, digits and _")
    return f"{server.rstrip('/')}/{database}"


def use_database(url: str) -> None:
    """Point this process's settings, engine and sessions at `url`, embedded (no broker).

    They are cached on first use: cleared so that nothing imported earlier keeps another database.
    Without a broker nothing here can send work to workers another run is using.
    """
    from app.config import get_settings
    from app.db import session

    os.environ["LABELMIX_DATABASE_URL"] = url
    os.environ.pop("LABELMIX_BROKER_URL", None)
    get_settings.cache_clear()
    session.get_engine.cache_clear()
    session._session_factory.cache_clear()


def recreate_database(server: str, database: str) -> None:
    """DROP and CREATE it, from the `postgres` database (CREATE DATABASE cannot run in a transaction)."""
    engine = create_engine(database_url(server, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        engine.dispose()


@contextmanager
def weak_label_builds_noted() -> Iterator[list[str]]:
    """Registering a task whose weak labels are not cached queues their training (minutes of CPU,
    in this process's embedded worker) after commit. The benchmark reads stored trials only, so the
    job is noted and dropped here; the task row then says its weak labels are not built yet."""
    from app.dispatch import InProcessDispatcher

    skipped: list[str] = []

    def note(_dispatcher: InProcessDispatcher, task_name: str) -> None:
        skipped.append(task_name)

    with mock.patch.object(InProcessDispatcher, "enqueue_weak_labels", note):
        yield skipped


def register_task(build_weak_labels: bool) -> tuple[Task, list[str]]:
    """Register cities the real way; with build_weak_labels, train its weak labeler first (cached)."""
    from app.db.session import session_scope
    from app.tasks.registry import get_or_register_task

    if build_weak_labels:
        from worker.engine.tasks import get_task
        from worker.engine.weak_labels import weak_labels

        weak_labels(get_task(TASK))
    with weak_label_builds_noted() as skipped, session_scope() as session:
        task = get_or_register_task(session, TASK)
    return task, skipped


@lru_cache
def is_causal(model: str) -> bool:
    """Cached: every budget's search space asks, and resolving a model checks its package on disk."""
    from worker.engine.models import resolve_model

    return resolve_model(model, convert=False).is_causal


def prepared_space(task: Task, request: AllocationRequest) -> tuple[AllocationRequest, SearchSpace]:
    """The service's own search space for a request (allocations.prepare)."""
    from app.allocations.lifecycle import prepare

    return prepare(task, request, is_causal(request.model))


def first_grid_points(space: SearchSpace, limit: int) -> list[Point]:
    """The points the service's first grid asks for, as SearchSpace.suggest turns its params into one."""
    return [space.point_for(Method(p["method"]), p["weak_share"], p.get("icl_shots"))
            for p in space.first_grid(limit)]


def allocate_request_body(task: Task) -> dict:
    """ALLOCATE_REQUEST with max_trials = its whole first grid: the search then asks only for grid
    points, which the seed stores, and never for a TPE proposal (which might need training)."""
    _, space = prepared_space(task, AllocationRequest(**ALLOCATE_REQUEST, max_trials=MAX_POINTS))
    return {**ALLOCATE_REQUEST, "max_trials": len(space.first_grid(MAX_POINTS))}


def request_trial_keys(task: Task, body: dict) -> list[str]:
    """Keys of the trials an allocation for `body` links first (seeds x first-grid points)."""
    request, space = prepared_space(task, AllocationRequest(**body))
    return [space.spec(p, seed, task=TASK, weak_labeler=request.weak_labeler).key()
            for p in first_grid_points(space, request.max_trials) for seed in request.seeds]


def read_allocation_points(task: Task, rng: np.random.Generator
                           ) -> tuple[AllocationRequest, SearchSpace, list[Point]]:
    """25 distinct points as a search would ask them: its first grid, then random method x share."""
    request, space = prepared_space(task, AllocationRequest(**READ_ALLOCATION))
    points = list(dict.fromkeys(first_grid_points(space, request.max_trials)))
    while len(points) < request.max_trials:
        method = space.methods[rng.integers(len(space.methods))]
        point = space.point_for(method, float(rng.choice(SHARES)))
        if point is not None and point not in points:
            points.append(point)
    return request, space, points


# --- which trials: the points of many budgets, weak shares, methods and recipes --------------------

Planned = tuple[Family, SearchSpace, Point, int]  # one trial: its family, space, point and seed


def family_space(task: Task, family: Family, budget: float) -> SearchSpace:
    request = AllocationRequest(task=TASK, model=family.model, budget=budget, weak_cost=WEAK_COST,
                                gold_cost=GOLD_COST, recipe=family.recipe, params=dict(family.overrides))
    return prepared_space(task, request)[1]


def space_points(space: SearchSpace) -> Iterator[Point]:
    """Every point a search of this space can ask for (methods x weak shares x icl shots)."""
    for method in space.methods:
        for share in SHARES:
            for shots in ICL_SHOT_CHOICES if method == Method.icl else (None,):
                if (point := space.point_for(method, share, shots)) is not None:
                    yield point


def candidate_points(task: Task, n_points: int) -> list[tuple[Family, SearchSpace, Point]]:
    """At least twice n_points distinct (family, point) pairs over a log grid of budgets ($4-$8192),
    the grid refined until there are enough (small budgets and the pool's cap repeat points)."""
    n_budgets = max(16, n_points // 60)
    while True:
        found: dict[tuple[Family, Point], SearchSpace] = {}
        for i, budget in enumerate(np.geomspace(4, 8192, n_budgets)):
            for family in FAMILIES:
                if i % family.every == 0:
                    space = family_space(task, family, round(float(budget), 2))
                    for point in space_points(space):
                        found.setdefault((family, point), space)
        if len(found) >= 2 * n_points:
            return [(family, space, point) for (family, point), space in found.items()]
        n_budgets *= 2


def bulk_plan(task: Task, n_trials: int, rng: np.random.Generator) -> Iterator[Planned]:
    """Random candidate points, three seeds each, in random order (ids then mix recipes and budgets)."""
    candidates = candidate_points(task, math.ceil(n_trials / len(BULK_SEEDS)))
    for index in rng.permutation(len(candidates)):
        family, space, point = candidates[index]
        for seed in BULK_SEEDS:
            yield family, space, point, seed


def measured(planned: Iterable[Planned], task: Task, labeler: str, versions: dict[str, str], limit: int,
             taken: set[str], rng: np.random.Generator) -> Iterator[dict]:
    """Done-trial rows for the planned trials, skipping keys already written, at most `limit`."""
    written = 0
    for family, space, point, seed in planned:
        if written >= limit:
            return
        spec = space.spec(point, seed, task=TASK, weak_labeler=labeler)
        key = spec.key()
        if key in taken:
            continue
        taken.add(key)
        accuracy = expected_accuracy(family.model, point, family.shift) + rng.normal(0, seed_sd(point))
        yield done_trial_values(task, spec, accuracy, versions, rng)
        written += 1


def batches(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_trials(task_id: int, rows: Iterable[dict], label: str) -> int:
    """Bulk INSERTs of ~BATCH rows, each with the results_version bump finish() makes per trial."""
    from app.db.session import session_scope

    total, started = 0, time.perf_counter()
    for batch in batches(rows, BATCH):
        with session_scope() as session:
            session.execute(insert(Trial), batch)
            session.execute(update(Task).where(Task.id == task_id)
                            .values(results_version=Task.results_version + len(batch)))
        total += len(batch)
        print(f"  {label}: {total} trials ({time.perf_counter() - started:.1f} s)", flush=True)
    return total


def create_read_allocation(task_id: int, request: AllocationRequest, points: list[Point], space: SearchSpace,
                           labeler: str) -> str:
    """The allocation `run` reads: created by the service, its points linked to stored done trials,
    finished (recommendation included) by the service's _finish."""
    from app.allocations import lifecycle as allocations
    from app.db.models import AllocationStatus, StudyPoint
    from app.db.session import session_scope

    with session_scope() as session:
        task = session.get(Task, task_id)
        allocation = allocations.create(session, task, request, is_causal(request.model))
        for number, point in enumerate(points):
            keys = [space.spec(point, seed, task=TASK, weak_labeler=labeler).key() for seed in request.seeds]
            row = StudyPoint(allocation_id=allocation.id, number=number, method=point.method.value,
                             n_weak=point.n_weak, n_gold=point.n_gold, told=True)
            row.trials = list(session.scalars(select(Trial).where(Trial.key.in_(keys)).order_by(Trial.seed)))
            allocation.points.append(row)
        session.flush()
        allocations._finish(allocation)
        if allocation.status != AllocationStatus.done:
            raise RuntimeError(f"the read allocation did not finish: {allocation.error}")
        return allocation.id


def recipe_counts(task_id: int) -> dict[str, int]:
    from app.db.session import session_scope

    with session_scope() as session:
        rows = session.execute(select(Trial.recipe_label, func.count()).where(Trial.task_id == task_id)
                               .group_by(Trial.recipe_label).order_by(func.count().desc()))
        return {label: n for label, n in rows}


def seed_database(n_trials: int, database: str, server: str, build_weak_labels: bool, seed: int) -> Seeded:
    """Drop, create, migrate, register cities, write n_trials done trials and the read allocation."""
    from app.cli import run_migrations
    from app.db.session import session_scope
    from app.trials.aggregates import refresh_all
    from worker.engine.runtime import library_versions

    out = Seeded(database, database_url(server, database))
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        out.timings_s[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        print(f"{name}: {out.timings_s[name]:.1f} s", flush=True)

    recreate_database(server, database)
    use_database(out.url)
    run_migrations()
    lap("create and migrate")
    task, out.weak_label_builds_skipped = register_task(build_weak_labels)
    out.task_id = task.id
    lap("register task")

    rng, versions, taken = np.random.default_rng(seed), library_versions(), set()
    read_request, read_space, read_points = read_allocation_points(task, rng)
    labeler = read_request.weak_labeler
    out.allocate_request = allocate_request_body(task)
    allocate_request, allocate_space = prepared_space(task, AllocationRequest(**out.allocate_request))
    # Both requests are minilm-l6 on the plain fast recipe: FAMILIES[0]'s curve measures them.
    reserved = [(FAMILIES[0], read_space, p, s) for p in read_points for s in read_request.seeds]
    reserved += [(FAMILIES[0], allocate_space, p, s)
                 for p in first_grid_points(allocate_space, allocate_request.max_trials)
                 for s in allocate_request.seeds]
    rows = measured(reserved, task, labeler, versions, n_trials, taken, rng)
    out.trials = insert_trials(task.id, rows, "allocations'")
    lap("plan and insert the allocations' trials")
    left = n_trials - out.trials
    bulk = measured(bulk_plan(task, left, rng), task, labeler, versions, left, taken, rng)
    out.trials += insert_trials(task.id, bulk, "bulk")
    lap("plan and insert the bulk trials")
    out.allocation_id = create_read_allocation(task.id, read_request, read_points, read_space, labeler)
    out.recipes = recipe_counts(task.id)
    lap("create the read allocation")
    # trials.finish counts each trial in its point's aggregate as it stores it; written in bulk, they
    # are counted here at once, as `labelmix migrate` counts trials stored before aggregates existed.
    with session_scope() as session:
        refresh_all(session)
    lap("count the trials in their points' aggregates")
    # What autovacuum does soon after a bulk load: without statistics the planner sorted all 100k
    # trials for GET /trials?limit=100 (190 ms) instead of reading the primary key in order (0.4 ms).
    with create_engine(out.url, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text("ANALYZE"))
    lap("analyze")
    return out
