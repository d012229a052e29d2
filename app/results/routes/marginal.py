"""What the next dollars would buy around an allocation, read off stored trials (no training)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import SessionDep
from app.api.responses import errors
from app.api.stored_answers import NOT_MODIFIED, stored_answer
from app.auth.caller import CallerDep
from app.errors import RequestError
from app.results.marginal import marginal
from app.results.recipes import current_recipe_points
from app.results.schemas.marginal import MarginalOut
from app.schemas.common import Budget, Filter, LabelCount, Price, TaskName
from app.tasks.registry import get_task_row
from app.trials import aggregates as point_aggregates

router = APIRouter(tags=["frontier"])


@router.get(
    "/frontier/{task}/marginal", response_model=MarginalOut,
    responses={**NOT_MODIFIED, **errors(described={404: "no such task"})},
)
def get_marginal(
    request: Request,
    task: Annotated[TaskName, Path()],
    session: SessionDep,
    caller: CallerDep,
    weak_cost: Annotated[Price, Query(description="price of one weak label")],
    gold_cost: Annotated[Price, Query(description="price of one gold label")],
    budget: Annotated[Budget, Query(description="the budget of the base allocation")],
    model: Annotated[Filter | None, Query(description="only trials of this strong model")] = None,
    max_extra: Annotated[
        Budget | None, Query(description="farthest neighbour, in extra spend (default: budget)")
    ] = None,
    method: Annotated[Filter | None, Query(description="base allocation's method (with n_weak, n_gold)")] = None,
    n_weak: Annotated[LabelCount | None, Query()] = None,
    n_gold: Annotated[LabelCount | None, Query()] = None,
    recipe: Annotated[Filter | None, Query(description="only trials of this recipe (default: the one with most trials)")] = None,
    step: Annotated[
        Budget | None, Query(description="extra dollars for the surface's answer (default: a quarter of the base's cost)")
    ] = None,
) -> MarginalOut:
    """Gain per extra dollar from more weak vs more gold labels, around the recommendation.

    The base is the allocation given by `method`, `n_weak` and `n_gold`, or else the best stored
    point within `budget`. Each way, the nearest stored neighbour of the same recipe that keeps the
    base's labels and spends most of its extra on that kind gives the gain; null with a reason
    when the stored trials do not reach that way.
    """
    anchor_parts = (method, n_weak, n_gold)
    if any(p is not None for p in anchor_parts) and any(p is None for p in anchor_parts):
        raise RequestError("method", "give method, n_weak and n_gold together, or none of them")
    task_row = get_task_row(session, task, caller.team)
    point_aggregates.refresh_for_read(session, task_row)  # trials stored since the last read move the answer's key

    def compute() -> MarginalOut:
        chosen, points, _ = current_recipe_points(session, task_row, model, recipe)
        anchor = (method, n_weak, n_gold) if method is not None else None
        body = marginal(points, weak_cost, gold_cost, budget, max_extra, anchor, step)
        return MarginalOut(task=task, model=model, recipe=chosen, **body)

    return stored_answer(request, task_row, compute)
