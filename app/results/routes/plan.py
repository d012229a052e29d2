"""The cheapest allocation predicted to reach a target accuracy, from the learning surface."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import SessionDep
from app.api.responses import errors
from app.auth.caller import CallerDep
from app.errors import RequestError
from app.results import learning
from app.results.recipes import current_recipe_points
from app.results.schemas.plan import PlanOut
from app.schemas.common import Budget, Filter, Price, TaskName
from app.stats.prices import Prices
from app.stats.surface import plan
from app.tasks.registry import buyable, get_task_row

router = APIRouter(tags=["frontier"])


@router.get("/plan/{task}", response_model=PlanOut, responses=errors(described={404: "no such task"}))
def get_plan(
    task: Annotated[TaskName, Path()],
    session: SessionDep,
    caller: CallerDep,
    target_accuracy: Annotated[float, Query(gt=0, lt=1, allow_inf_nan=False, description="the accuracy to reach")],
    weak_cost: Annotated[Price, Query(description="price of one weak label")],
    gold_cost: Annotated[Price, Query(description="price of one gold label")],
    max_budget: Annotated[
        Budget | None, Query(description="the most you would spend (default: the dearest measured point)")
    ] = None,
    model: Annotated[Filter | None, Query(description="only trials of this strong model")] = None,
    recipe: Annotated[Filter | None, Query(description="only trials of this recipe (default: the one with most trials)")] = None,
    confidence: Annotated[
        float,
        Query(ge=0.5, lt=1, allow_inf_nan=False,
              description="the least probability of reaching the target the answer must have"),
    ] = 0.8,
) -> PlanOut:
    """The cheapest allocation the learning surface gives at least `confidence` chance of reaching
    `target_accuracy` (its mean accuracy, that is; one training run varies around it).

    Answers only from within the measured points; when the evidence does not reach the target, the
    allocation is null and `reason` gives the best predicted accuracy within it.
    """
    task_row = get_task_row(session, task, caller.team)
    recipe, points, _ = current_recipe_points(session, task_row, model, recipe)
    surfaces, missing = learning.surfaces_by_method(points)
    if not surfaces:
        why = "; ".join(f"{m}: {r}" for m, r in missing.items()) or "no trial of this task is stored"
        raise RequestError("task", f"no learning surface can be fitted for {task!r}: {why}")
    prices = Prices(weak_cost, gold_cost)
    costs = [p.cost(prices) for p in points]
    budget = max_budget or max(costs)
    pool = buyable(task_row, points[0].weak_labeler)
    answer = plan(surfaces, target_accuracy, weak_cost, gold_cost, budget, pool_size=pool, confidence=confidence)
    warnings = []
    if answer["method"] is None:
        warnings.append({"code": "outside_evidence", "message": answer["reason"]})
    answer.pop("target", None)
    answer.pop("max_budget", None)
    return PlanOut(
        task=task, model=model, recipe=recipe, weak_cost=weak_cost, gold_cost=gold_cost,
        target_accuracy=target_accuracy, max_budget=budget, surfaces=learning.describe(surfaces, missing),
        warnings=warnings, **answer,
    )
