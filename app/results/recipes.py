"""Recipes kept apart: trials trained differently never share a frontier, a surface or a table.

A trial's recipe, for this purpose, is its named recipe (fast, paper) plus any parameter overrides:
trials trained with 6 steps a stage and with 60 measure different things. Its label is the name,
followed by the overrides when there are any ("fast max_steps_per_stage=6").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.db.models import Task, Trial
from app.errors import RequestError
from app.results.points import PointStats, group_trials
from app.trials import aggregates as point_aggregates
from app.trials.recipe_keys import label
from app.trials.records import current_trials
from worker.engine.models import ModelSpecError, check_model_name


def recipe_label(trial: Trial) -> str:
    return label(trial.recipe, (trial.spec or {}).get("params", {}))


def recipes_in(trials: Iterable[Trial]) -> list[dict]:
    """The recipes among these trials, the one with the most trials first."""
    counts = Counter(recipe_label(t) for t in trials)
    return [{"recipe": label, "n_trials": n} for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def select_recipe(trials: list[Trial], recipe: str | None) -> tuple[str | None, list[Trial], list[dict]]:
    """(chosen recipe, its trials, every recipe present): by default the recipe with the most trials."""
    available = recipes_in(trials)
    recipe = _chosen(recipe, available)
    return recipe, [t for t in trials if recipe_label(t) == recipe], available


def _check_model(model: str) -> None:
    """A model filter matching no stored trial is refused when it names no model at all (a typo
    would otherwise read as "nothing measured"); a known model with no trials yet is an honest empty
    answer. A model stored under an earlier allow-list still filters its own trials."""
    try:
        check_model_name(model)
    except ModelSpecError as exc:
        raise RequestError("model", str(exc)) from None


def _chosen(recipe: str | None, available: list[dict]) -> str | None:
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
    recipe = _chosen(recipe, available)
    return recipe, point_aggregates.read_points(session, task, model, recipe) if recipe is not None else [], available


def current_recipe_points_rowwise(
    session: Session, task: Task, model: str | None, recipe: str | None
) -> tuple[str | None, list[PointStats], list[dict]]:
    """The same from whole trial rows, each label computed from its spec and every point grouped
    here: the reference current_recipe_points is tested against (tests/app/test_stored_reads.py)."""
    trials = list(session.scalars(current_trials(task, model).order_by(Trial.id)))
    recipe, chosen, available = select_recipe(trials, recipe)
    return recipe, group_trials(chosen), available
