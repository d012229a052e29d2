"""What a trial was trained with, as keys stored beside it: its recipe's label and its params' digest.

Computed once when the trial is created (trials.get_or_create_trial) and kept as columns, so that a
read selects a recipe and groups points in SQL instead of decoding every trial's spec.
"""

from __future__ import annotations

import hashlib
import json


def overrides(recipe: str | None, params: dict) -> dict:
    """The params a trial ran with that differ from its named recipe's."""
    from worker.engine.spec import Recipe, recipe_params

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
