"""Recipes kept apart: trials trained differently never share a frontier, a surface or a table.

A trial's recipe, for this purpose, is its named recipe (fast, paper) plus any parameter overrides:
trials trained with 6 steps a stage and with 60 measure different things. Its label is the name,
followed by the overrides when there are any ("fast max_steps_per_stage=6").
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import Task
from app.errors import RequestError
from app.results.points import PointStats
from app.trials import aggregates as point_aggregates
from worker.engine.models import ModelSpecError, check_model_name


def _check_model(model: str) -> None:
    """A model filter matching no stored trial is refused when it names no model at all (a typo
    would otherwise read as "nothing measured"); a known model with no trials yet is an honest empty
    answer. A model stored under an earlier allow-list still filters its own trials."""
    try:
        check_model_name(model)
    except ModelSpecError as exc:
        raise RequestError("model", str(exc)) from None


def chosen_recipe(recipe: str | None, available: list[dict]) -> str | None:
    if recipe is None:
        return available[0]["recipe"] if available else None
    if recipe not in {r["recipe"] for r in available}:
        known = ", ".join(repr(r["recipe"]) for r in available) or "none (no trial of this task is stored yet)"
        raise RequestError("recipe", f"no stored trial of this task used recipe {recipe!r}; recipes stored: {known}")
    return recipe


def current_recipe_points(
    session: Session, task: Task, model: str | None, recipe: str | None
) -> tuple[str | None, list[PointStats], list[dict]]:
    """(chosen recipe, its points, every recipe present) over the task's current done trials (of one
    model, when given), read from the points' aggregates: one row per point, brought up to date first."""
    point_aggregates.refresh_for_read(session, task)
    available = point_aggregates.recipe_counts(session, task, model)
    if model is not None and not available:
        _check_model(model)
    recipe = chosen_recipe(recipe, available)
    return recipe, point_aggregates.read_points(session, task, model, recipe) if recipe is not None else [], available
