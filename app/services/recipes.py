"""Recipes kept apart: trials trained differently never share a frontier, a surface or a table.

A trial's recipe, for this purpose, is its named recipe (fast, paper) plus any parameter overrides:
trials trained with 6 steps a stage and with 60 measure different things. Its label is the name,
followed by the overrides when there are any ("fast max_steps_per_stage=6").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy.orm import Session

from ..db.models import Task, Trial
from .errors import RequestError
from .trials import current_trials


def overrides(trial: Trial) -> dict:
    """The params a trial ran with that differ from its named recipe's."""
    from worker.engine.spec import Recipe, recipe_params

    params = (trial.spec or {}).get("params", {})
    try:
        base = recipe_params(Recipe(trial.recipe or "paper")).model_dump(mode="json")
    except ValueError:
        return params
    return {k: v for k, v in sorted(params.items()) if base.get(k) != v}


def recipe_label(trial: Trial) -> str:
    extra = " ".join(f"{k}={v}" for k, v in overrides(trial).items())
    return f"{trial.recipe or 'paper'}{' ' + extra if extra else ''}"


def recipes_in(trials: Iterable[Trial]) -> list[dict]:
    """The recipes among these trials, the one with the most trials first."""
    counts = Counter(recipe_label(t) for t in trials)
    return [{"recipe": label, "n_trials": n} for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def select_recipe(trials: list[Trial], recipe: str | None) -> tuple[str | None, list[Trial], list[dict]]:
    """(chosen recipe, its trials, every recipe present): by default the recipe with the most trials."""
    available = recipes_in(trials)
    if recipe is None:
        recipe = available[0]["recipe"] if available else None
    elif recipe not in {r["recipe"] for r in available}:
        known = ", ".join(repr(r["recipe"]) for r in available) or "none (no trial of this task is stored yet)"
        raise RequestError("recipe", f"no stored trial of this task used recipe {recipe!r}; recipes stored: {known}")
    return recipe, [t for t in trials if recipe_label(t) == recipe], available


def current_recipe_trials(
    session: Session, task: Task, model: str | None, recipe: str | None
) -> tuple[str | None, list[Trial], list[dict]]:
    """select_recipe over the task's current done trials (of one model, when given)."""
    return select_recipe(list(session.scalars(current_trials(task, model))), recipe)
