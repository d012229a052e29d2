"""Sweeps: several budgets asked for at once, one allocation each, sharing what they train.

A sweep has no table of its own: its allocations carry its id (`allocations.sweep_id`). Each is a
normal allocation of one budget (its stored request has that `budget`), advanced like any other;
a point that comes up at several budgets is the same stored trials (a trial's key does not depend
on the budget), so it is trained once. What the sweep adds is `best_at_budget`: at each budget,
the recommendation over every done point of the whole sweep that costs no more than that budget,
so a point searched for a cheaper budget competes at a dearer one.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.allocations import lifecycle as allocation_service
from app.allocations.recommend import recommendation
from app.allocations.schemas.allocations import AllocationRequest, BudgetBest, SweepOut
from app.db.models import Allocation, AllocationStatus, Task, Trial, TrialStatus
from app.errors import NotFoundError, RequestError
from app.results.points import group_trials
from app.stats.prices import Prices
from app.tasks.registry import majority_rate

# A point costs at most a budget up to float rounding (0.1 * 30 is 3.0000000000000004).
COST_TOLERANCE = 1e-9


def create(session: Session, task: Task, request: AllocationRequest, model_is_causal: bool) -> tuple[str, list[int]]:
    """One allocation per budget of `request.budgets`, each advanced: (sweep id, trial ids to enqueue).

    Every budget is checked before any allocation (and its Optuna study) is created, so a budget
    the methods cannot train on rejects the whole sweep, naming `budgets`.
    """
    if not request.budgets:
        raise RequestError("budgets", "a sweep needs at least one budget")
    singles = [request.model_copy(update={"budget": budget, "budgets": None}) for budget in request.budgets]
    for single in singles:
        try:
            allocation_service.prepare(task, single, model_is_causal)
        except RequestError as exc:
            if exc.field != "budget":
                raise
            raise RequestError("budgets", f"budget {exc.message}") from None
    sweep_id = str(uuid.uuid4())
    to_run: list[int] = []
    for single in singles:
        allocation = allocation_service.create(session, task, single, model_is_causal, sweep_id=sweep_id)
        to_run += allocation_service.advance(session, allocation.id)
    return sweep_id, list(dict.fromkeys(to_run))  # a trial shared by two budgets is sent once


def allocations_of(session: Session, sweep_id: str) -> list[Allocation]:
    """The sweep's allocations, cheapest budget first; NotFoundError when there are none."""
    rows = list(session.scalars(select(Allocation).where(Allocation.sweep_id == sweep_id)))
    if not rows:
        raise NotFoundError(f"sweep {sweep_id!r} not found")
    return sorted(rows, key=lambda a: a.request["budget"])


def status_of(allocations: list[Allocation]) -> str:
    """done when every allocation is done; failed when all have finished and some failed."""
    statuses = {a.status for a in allocations}
    if statuses == {AllocationStatus.done}:
        return "done"
    if statuses <= {AllocationStatus.done, AllocationStatus.failed}:
        return "failed"
    if statuses == {AllocationStatus.queued}:
        return "queued"
    return "running"


def candidate_trials(allocations: list[Allocation], budget: float, weak_cost: float, gold_cost: float) -> list[Trial]:
    """The trials of every done point of these allocations that costs at most `budget`, each once.

    A point is done when all its trials are (as when an allocation finishes); a cheaper budget's
    points are candidates at a dearer one, and so is a dearer budget's point that happens to be cheap.
    """
    found: dict[int, Trial] = {}
    prices = Prices(weak_cost, gold_cost)
    for allocation in allocations:
        for point in allocation.points:
            if prices.cost(point.n_weak, point.n_gold) > budget + COST_TOLERANCE:
                continue
            if point.trials and all(t.status == TrialStatus.done for t in point.trials):
                found.update((t.id, t) for t in point.trials)
    return list(found.values())


def best_at_budget(allocations: list[Allocation], allocation: Allocation) -> BudgetBest:
    """The recommendation at `allocation`'s budget over the whole sweep's done points within it."""
    request = allocation.request
    budget = request["budget"]
    trials = candidate_trials(allocations, budget, request["weak_cost"], request["gold_cost"])
    points = group_trials(trials)
    if not points:
        return BudgetBest(budget=budget)
    rec = recommendation(
        points,
        request,
        majority_rate(allocation.task),
        allocation_service.weak_label_accuracy(trials),
    )
    return BudgetBest(
        budget=budget,
        recommendation=rec,
        candidate_points=len(points),
        candidate_trial_ids=sorted(found.id for found in trials),
    )


def sweep_out(session: Session, sweep_id: str) -> SweepOut:
    allocations = allocations_of(session, sweep_id)
    return SweepOut(
        id=sweep_id,
        status=status_of(allocations),
        task=allocations[0].task.shown_name,
        budgets=[a.request["budget"] for a in allocations],
        allocations=[allocation_service.allocation_out(a) for a in allocations],
        best_at_budget=[best_at_budget(allocations, a) for a in allocations],
    )
