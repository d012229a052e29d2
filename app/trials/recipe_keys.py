"""What a trial was trained with, as keys stored beside it: its recipe's label and its params' digest.

Computed once when the trial is created (trials.get_or_create_trial) and kept as columns, so that a
read selects a recipe and groups points in SQL instead of decoding every trial's spec.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import event

from app.db.models import Trial
from worker.engine.spec import ENGINE_VERSION, Recipe, recipe_params


def overrides(recipe: str | None, params: dict) -> dict:
    """The params a trial ran with that differ from its named recipe's."""
    try:
        base = recipe_params(Recipe(recipe or "paper")).model_dump(mode="json")
    except ValueError:
        return params
    return {k: v for k, v in sorted(params.items()) if base.get(k) != v}


def label(recipe: str | None, params: dict) -> str:
    """The recipe's label: its name, then its overrides. Stored with each trial (trials.recipe_label)
    when it is created, so that reads select a recipe in SQL."""
    extra = " ".join(f"{k}={v}" for k, v in overrides(recipe, params).items())
    return f"{recipe or 'paper'}{' ' + extra if extra else ''}"


def params_key(params: dict) -> str:
    """A short digest of a trial's full params (trials.params_key): trials grouped into one point
    must have trained alike, down to the params a label leaves out."""
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


@event.listens_for(Trial, "before_insert")
def _fill_stored_keys(mapper, connection, trial: Trial) -> None:
    """A trial added through the ORM gets the recipe keys and engine version one made by
    get_or_create_trial gets. (Registered here, on import of app.trials, so that storage holds no
    rule of its own.)"""
    spec = trial.spec or {}
    params = spec.get("params", {})
    if not trial.recipe_label:
        trial.recipe_label = label(trial.recipe, params)
    if not trial.params_key:
        trial.params_key = params_key(params)
    if trial.engine_version is None:
        trial.engine_version = spec.get("engine_version", ENGINE_VERSION)
