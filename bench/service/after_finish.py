"""The frontier read right after a trial of its task finishes: what a dashboard watching a running
allocation asks for again and again.

Each round finishes one trial the way a worker does (`trials.get_or_create_trial`, `claim`,
`finish`, which refreshes its point's aggregate and moves the task's results_version), then asks
the warm frontier URL once: its cached answer is stale, so the server brings its kept points up to
date and computes the answer again. The trial is one more seed (10,000 and up: never seeded) of a
point the seed stored, so every round adds a done trial to the benchmark database.
"""

from __future__ import annotations

import time

import httpx
import numpy as np

from worker.engine.runtime import library_versions
from worker.engine.spec import TrialSpec

from . import seed as seeding
from .measurements import expected_accuracy, seed_sd, trial_result

WORKER = "bench-after-finish"
FIRST_SEED = 10_000


def finish_one(task_name: str, rng: np.random.Generator, versions: dict[str, str]) -> int:
    """Finish one new seed of a stored point of the main recipe, as a worker does; its trial id."""
    from sqlalchemy import func, select

    from app.allocations.search import Point
    from app.db.models import Task, Trial
    from app.db.session import session_scope
    from app.trials import cache as trials

    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == task_name)).one()
        template = session.scalars(
            select(Trial).where(Trial.task_id == task.id, Trial.recipe_label == "fast", Trial.seed == 0)
            .order_by(Trial.id).offset(int(rng.integers(100))).limit(1)
        ).one()
        next_seed = max(FIRST_SEED, (session.scalar(select(func.max(Trial.seed))) or 0) + 1)
        spec = TrialSpec.model_validate({**template.spec, "seed": next_seed})
        trial = trials.get_or_create_trial(session, task, spec)
        if not trials.claim(session, trial.id, WORKER):
            raise RuntimeError(f"trial {trial.id} could not be claimed")
        point = Point(spec.method, spec.n_weak, spec.n_gold)
        accuracy = expected_accuracy(spec.model, point) + rng.normal(0, seed_sd(point))
        result = trial_result(spec, accuracy, versions, rng).model_dump(mode="json")
        if not trials.finish(session, trial.id, WORKER, result):
            raise RuntimeError(f"trial {trial.id} could not be finished")
        return trial.id


def measure(base_url: str, url: str, rounds: int, task_name: str = seeding.TASK) -> list[tuple[float, int, int]]:
    """(seconds, status, bytes) of the frontier read after each of `rounds` finished trials."""
    rng, versions, samples = np.random.default_rng(FIRST_SEED), library_versions(), []
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for _ in range(rounds):
            finish_one(task_name, rng, versions)
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started, response.status_code, len(response.content)))
    return samples
