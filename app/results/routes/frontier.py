"""The accuracy-vs-cost frontier of a task, for any cost assumption: a pure read of stored trials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator

from app.api.deps import SessionDep
from app.api.responses import errors
from app.api.stored_answers import NOT_MODIFIED, stored_answer
from app.auth.caller import CallerDep
from app.results.frontier import DEFAULT_LISTED_POINTS, PAPER_BUDGETS, frontier
from app.results.recipes import current_recipe_points
from app.results.schemas.frontier import FrontierOut
from app.schemas.common import MAX_BUDGET, Filter, Price, TaskName
from app.tasks.registry import buyable, get_task_row
from app.trials import aggregates as point_aggregates

router = APIRouter(tags=["frontier"])
MAX_TABLE_BUDGETS = 50
MAX_LISTED_POINTS = 100_000


def _budgets_in_range(budgets: list[float] | None) -> list[float] | None:
    # One check over the list, so that the error names `budgets` itself rather than an index.
    if budgets is not None and not all(0 < b <= MAX_BUDGET for b in budgets):  # NaN fails both
        raise ValueError(f"every budget must be above 0 and at most {MAX_BUDGET:g}")
    return budgets


@router.get(
    "/frontier/{task}", response_model=FrontierOut, responses={**NOT_MODIFIED, **errors(described={404: "no such task"})}
)
def get_frontier(
    request: Request,
    task: Annotated[TaskName, Path()],
    session: SessionDep,
    caller: CallerDep,
    weak_cost: Annotated[Price, Query(description="price of one weak label")],
    gold_cost: Annotated[Price, Query(description="price of one gold label")],
    model: Annotated[Filter | None, Query(description="only trials of this strong model")] = None,
    budgets: Annotated[
        list[float] | None,
        Query(max_length=MAX_TABLE_BUDGETS, description=f"budgets for the best-allocation table (up to "
              f"{MAX_TABLE_BUDGETS}, each above 0 and at most {MAX_BUDGET:g})",
              # the bounds _budgets_in_range checks, shown in the schema too
              json_schema_extra={"items": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_BUDGET}}),
        AfterValidator(_budgets_in_range),
    ] = None,
    recipe: Annotated[
        Filter | None,
        Query(description="only trials of this recipe, as `recipes` names it (default: the one with most trials)"),
    ] = None,
    predict: Annotated[
        bool, Query(description="add the learning surface's predicted best allocation at each budget, with a band")
    ] = False,
    max_points: Annotated[
        int, Query(ge=1, le=MAX_LISTED_POINTS, description="list at most this many measured points in `points` "
                   "(beyond those on a frontier line or in the budget table); `points_total` counts them all")
    ] = DEFAULT_LISTED_POINTS,
) -> FrontierOut:
    """Measured points, their Pareto sets and the best per budget at these prices (ETag: repeats cost nothing)."""
    task_row = get_task_row(session, task, caller.team)
    point_aggregates.refresh_for_read(session, task_row)  # trials stored since the last read move the answer's key

    def compute() -> FrontierOut:
        chosen_budgets = budgets or [b * gold_cost for b in PAPER_BUDGETS]
        chosen, points, recipes = current_recipe_points(session, task_row, model, recipe)
        pool = buyable(task_row, points[0].weak_labeler) if points else None
        body = frontier(points, weak_cost, gold_cost, chosen_budgets, predict=predict, pool_size=pool,
                        max_points=max_points)
        return FrontierOut(task=task, model=model, recipe=chosen, recipes=recipes, **body)

    return stored_answer(request, task_row, compute)
