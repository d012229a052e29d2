"""Learning surfaces from stored trials: one per method of one recipe, cached until trials change.

Fitting a surface (with its leave-one-point-out check) takes a second or two, so fits are kept
in memory keyed by exactly the measured points they were fitted on: a new trial changes the key.
"""

from __future__ import annotations

from functools import lru_cache

from app.results.points import PointStats, with_details
from app.stats.surface import MIN_POINTS, Observation, Surface, fit_surface


def observations(points: list[PointStats]) -> tuple[Observation, ...]:
    """Each point's mean test accuracy over seeds, with the variance its interval gives that mean."""
    return tuple(
        Observation(p.n_weak, p.n_gold, p.accuracy, p.interval("test").se ** 2)
        for p in sorted(points, key=lambda p: (p.n_weak, p.n_gold))
    )


@lru_cache(maxsize=64)
def _fit(observed: tuple[Observation, ...]) -> Surface:
    return fit_surface(list(observed))


def surfaces_by_method(points: list[PointStats]) -> tuple[dict[str, Surface], dict[str, str]]:
    """(surface per method with enough points, reason per method without one).

    The points must be of one recipe, model and weak labeler (recipes.current_recipe_points, a model filter).
    """
    with_details(points)  # each point's interval needs its per-seed accuracies
    surfaces, missing = {}, {}
    for method in sorted({p.method for p in points}):
        mine = [p for p in points if p.method == method]
        models = {(p.model, p.weak_labeler) for p in mine}
        if len(models) > 1:
            missing[method] = "trials of several models or weak labelers: choose one model"
        elif len(mine) < MIN_POINTS:
            missing[method] = f"{len(mine)} measured point(s); a surface needs at least {MIN_POINTS}"
        else:
            surfaces[method] = _fit(observations(mine))
    return surfaces, missing


def describe(surfaces: dict[str, Surface], missing: dict[str, str]) -> list[dict]:
    """What each surface was fitted on and how well it predicts points it did not see."""
    out = [{"method": m, "n_points": len(s.observations), "model": s.model, "loo": s.loo, "reason": None}
           for m, s in surfaces.items()]
    return out + [{"method": m, "n_points": None, "model": None, "loo": None, "reason": r} for m, r in missing.items()]
