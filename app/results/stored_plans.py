"""Allocations answered from stored trials with no search: no Optuna study, no queue, a few queries.

The points an allocation asks are known before any search runs in two cases:
- an identical request (same task version, model, costs, budget, methods, seeds, recipe, params,
  max_trials) finished before: the search is reproducible from the request (allocations._study_seed),
  so it would ask that allocation's points again;
- the opening points (surface_sampler.opening_params) fill the request's max_trials on its own.
When every trial of those points is stored done, the allocation is answered from them at once.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.allocations.search import Point, SearchSpace
from app.db.models import Allocation, AllocationStatus, StudyPoint, Task, Trial, TrialStatus
from worker.engine.spec import ENGINE_VERSION, Method


def request_key(task: Task, stored_request: dict) -> str:
    """Names what an allocation asked, on this build of the task (a rebuilt task measures other data)
    and of the engine (another engine's trials would have answered otherwise)."""
    canonical = json.dumps([task.id, task.version, ENGINE_VERSION, stored_request], sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _asked_before(session: Session, allocation: Allocation) -> list[Point] | None:
    """The points of the newest finished allocation with the same request key, in the order asked."""
    earlier = session.scalars(
        select(Allocation)
        .where(Allocation.request_key == allocation.request_key, Allocation.status == AllocationStatus.done,
               Allocation.id != allocation.id)
        .order_by(Allocation.created_at.desc())
        .limit(1)
        .options(selectinload(Allocation.points))
    ).first()
    if earlier is None:
        return None
    return [Point(Method(p.method), p.n_weak, p.n_gold) for p in earlier.points]


def _opening_grid(space: SearchSpace, grid: list[dict], points_total: int) -> list[Point] | None:
    """The opening grid's points, when they are all the request asks for."""
    if len(grid) < points_total:
        return None
    return [space.point_for(Method(g["method"]), g["weak_share"], g.get("icl_shots")) for g in grid]


def answer_from_store(session: Session, allocation: Allocation, space: SearchSpace, grid: list[dict]) -> bool:
    """Give the allocation its points, linked to stored done trials, when they are known and all stored.

    True: the allocation is ready to finish (its points told). False: nothing was changed.
    """
    points = _asked_before(session, allocation) or _opening_grid(space, grid, allocation.points_total)
    if not points:
        return False
    request, task = allocation.request, allocation.task
    keys = [[space.spec(p, seed, task=task.name, weak_labeler=request["weak_labeler"]).key() for seed in request["seeds"]]
            for p in points]
    stored = {t.key: t for t in session.scalars(
        select(Trial).where(Trial.key.in_([k for ks in keys for k in ks]), Trial.status == TrialStatus.done)
    )}
    if any(k not in stored for ks in keys for k in ks):
        return False
    for number, (point, point_keys) in enumerate(zip(points, keys, strict=True)):
        allocation.points.append(StudyPoint(
            number=number, method=point.method.value, n_weak=point.n_weak, n_gold=point.n_gold, told=True,
            trials=[stored[k] for k in point_keys],
        ))
    session.flush()
    return True
