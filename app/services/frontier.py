"""The accuracy-vs-cost frontier over stored trials, for any cost assumption, with no training.

A trial is cost-agnostic, so its cost is computed here: n_gold * gold_cost + n_weak * weak_cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from . import learning
from .intervals import LEVEL
from .points import PointStats, with_details
from .surface import predicted_frontier

# The paper's budgets (in gold-label units at $1 a gold label).
PAPER_BUDGETS = (5, 17, 65, 257, 1025, 4097)
# The paper's frontier: a run is on it when it beats the best cheaper run by more than this.
MIN_GAIN = 0.002


def pareto_frontier(points: list[PointStats], weak_cost: float, gold_cost: float) -> list[PointStats]:
    """The paper's rule, a margin a plain dominance check (optuna's included) has no room for."""
    ordered = sorted(((p.cost(weak_cost, gold_cost), -p.accuracy, i) for i, p in enumerate(points)))
    frontier: list[PointStats] = []
    best = -math.inf
    for _, negative_accuracy, i in ordered:
        if not frontier or -negative_accuracy > best + MIN_GAIN:
            frontier.append(points[i])
            best = -negative_accuracy
    return frontier


def best_within(points: list[PointStats], budget: float, weak_cost: float, gold_cost: float) -> PointStats | None:
    """The most accurate affordable point on the whole test set, as the recommendation chooses (recommend.py)."""
    # -i: of equals, the first (as max over the points themselves would choose).
    affordable = ((p.accuracy, -cost, -i) for i, p in enumerate(points)
                  if (cost := p.cost(weak_cost, gold_cost)) <= budget + 1e-9)
    best = max(affordable, default=None)
    return None if best is None else points[-best[2]]


def listed_points(points: list[PointStats], drawn: list[PointStats], max_points: int | None) -> list[PointStats]:
    """The points a frontier lists: all of them up to `max_points`; beyond it, every point drawn on a
    frontier line or in the budget table, then the most accurate of the rest up to `max_points`."""
    if max_points is None or len(points) <= max_points:
        return points
    shown = {id(p): p for p in drawn}
    for p in sorted(points, key=lambda p: -p.accuracy):
        if len(shown) >= max_points:
            break
        shown.setdefault(id(p), p)
    return list(shown.values())


def frontier(
    points: list[PointStats], weak_cost: float, gold_cost: float, budgets: Iterable[float],
    predict: bool = False, pool_size: int | None = None, max_points: int | None = None,
) -> dict:
    """Measured points, their Pareto sets and the best per budget; with `predict`, the surface's too.

    The points must share one recipe (recipes.current_recipe_points): mixing them mixes what was measured.
    Only the points listed (listed_points) are described, with their intervals: at 100k trials
    describing every point was most of a frontier's time and megabytes.
    """
    budgets = list(budgets)

    def described(selected: list[PointStats]) -> list[dict]:
        return [p.summary(weak_cost, gold_cost) for p in selected]

    methods = sorted({p.method for p in points})
    predicted = surfaces = None
    if predict:
        fitted, missing = learning.surfaces_by_method(points)
        surfaces = learning.describe(fitted, missing)
        predicted = predicted_frontier(fitted, weak_cost, gold_cost, budgets, pool_size) if fitted else []
    overall = pareto_frontier(points, weak_cost, gold_cost)
    per_method = {m: pareto_frontier([p for p in points if p.method == m], weak_cost, gold_cost) for m in methods}
    best = [best_within(points, budget, weak_cost, gold_cost) for budget in budgets]
    drawn = [*overall, *(p for line in per_method.values() for p in line), *(b for b in best if b is not None)]
    listed = listed_points(points, drawn, max_points)
    with_details([*listed, *drawn])
    return {
        "level": LEVEL,
        "predicted": predicted,
        "surfaces": surfaces,
        "weak_cost": weak_cost,
        "gold_cost": gold_cost,
        "points_total": len(points),
        "points": described(sorted(listed, key=lambda p: p.cost(weak_cost, gold_cost))),
        "overall": described(overall),
        "per_method": {m: described(line) for m, line in per_method.items()},
        "best_at_budget": [
            {"budget": budget, "best": described([b])[0] if b is not None else None} for budget, b in zip(budgets, best)
        ],
    }
