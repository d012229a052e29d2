"""The reference the service's stored reads are tested against: a task's points computed from whole
trial rows, each recipe label from its spec and every point grouped here, with none of the
aggregates (app.trials.aggregates) that app.results.recipes.current_recipe_points reads. A test
oracle, so it lives with the tests (test_stored_reads, test_failed_seeds, test_plan_api)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.db.models import Task, Trial
from app.results.points import PointStats, group_trials
from app.results.recipes import chosen_recipe
from app.trials.recipe_keys import label
from app.trials.records import current_trials


def recipe_label(trial: Trial) -> str:
    return label(trial.recipe, (trial.spec or {}).get("params", {}))


def recipes_in(trials: Iterable[Trial]) -> list[dict]:
    """The recipes among these trials, the one with the most trials first."""
    counts = Counter(recipe_label(t) for t in trials)
    return [{"recipe": label, "n_trials": n} for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def select_recipe(trials: list[Trial], recipe: str | None) -> tuple[str | None, list[Trial], list[dict]]:
    """(chosen recipe, its trials, every recipe present): by default the recipe with the most trials."""
    available = recipes_in(trials)
    recipe = chosen_recipe(recipe, available)
    return recipe, [t for t in trials if recipe_label(t) == recipe], available


def current_recipe_points_rowwise(
    session: Session, task: Task, model: str | None, recipe: str | None
) -> tuple[str | None, list[PointStats], list[dict]]:
    """The same from whole trial rows, each label computed from its spec and every point grouped
    here: the reference current_recipe_points is tested against."""
    trials = list(session.scalars(current_trials(task, model).order_by(Trial.id)))
    recipe, chosen, available = select_recipe(trials, recipe)
    return recipe, group_trials(chosen), available
