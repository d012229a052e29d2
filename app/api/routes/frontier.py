"""The accuracy-vs-cost frontier of a task, for any cost assumption: a pure read of stored trials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas.frontier import FrontierOut
from ...services.errors import RequestError
from ...services.frontier import PAPER_BUDGETS, frontier
from ...services.recipes import current_recipe_trials
from ...services.tasks import get_task_row
from ..deps import SessionDep

router = APIRouter(tags=["frontier"])


@router.get("/frontier/{task}", response_model=FrontierOut)
def get_frontier(
    task: str,
    session: SessionDep,
    weak_cost: Annotated[float, Query(gt=0, description="price of one weak label")],
    gold_cost: Annotated[float, Query(gt=0, description="price of one gold label")],
    model: Annotated[str | None, Query(description="only trials of this strong model")] = None,
    budgets: Annotated[list[float] | None, Query(description="budgets for the best-allocation table")] = None,
    recipe: Annotated[
        str | None, Query(description="only trials of this recipe, as `recipes` names it (default: the one with most trials)")
    ] = None,
    predict: Annotated[
        bool, Query(description="add the learning surface's predicted best allocation at each budget, with a band")
    ] = False,
) -> FrontierOut:
    task_row = get_task_row(session, task)
    chosen_budgets = budgets or [b * gold_cost for b in PAPER_BUDGETS]
    if any(b <= 0 for b in chosen_budgets):
        raise RequestError("budgets", "every budget must be positive")
    recipe, trials, recipes = current_recipe_trials(session, task_row, model, recipe)
    pool = task_row.buyable(trials[0].weak_labeler) if trials else None
    body = frontier(trials, weak_cost, gold_cost, chosen_budgets, predict=predict, pool_size=pool)
    return FrontierOut(task=task, model=model, recipe=recipe, recipes=recipes, **body)
