"""The accuracy-vs-cost frontier over stored trials, for any cost assumption, with no training.

A trial is cost-agnostic, so its cost is computed here, at the request's prices (stats.prices).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.results import learning
from app.results.points import PointStats, with_details
from app.stats.intervals import LEVEL
from app.stats.prices import Prices
from app.stats.surface import predicted_frontier

# The paper's budgets (in gold-label units at $1 a gold label).
PAPER_BUDGETS = (5, 17, 65, 257, 1025, 4097)
# Measured points GET /frontier lists by default: a chart of a thousand dots already shows the cloud
# under the frontier; every point of a 100k-trial store was 12 MB per request (max_points asks more).
DEFAULT_LISTED_POINTS = 1000
# The paper's frontier: a run is on it when it beats the best cheaper run by more than this.
MIN_GAIN = 0.002


@dataclass(frozen=True)
class PricedPoints:
    """Many points at one set of prices, as numpy arrays rather than Point values: a frontier of 25k points takes
    its Pareto sets and budget table from them instead of asking each point again and again."""

    points: list[PointStats]
    cost: np.ndarray
    accuracy: np.ndarray

    @classmethod
    def of(cls, points: list[PointStats], weak_cost: float, gold_cost: float) -> PricedPoints:
        n_weak = np.fromiter((p.n_weak for p in points), float, len(points))
        n_gold = np.fromiter((p.n_gold for p in points), float, len(points))
        accuracy = np.fromiter((p.accuracy for p in points), float, len(points))
        return cls(points, Prices(weak_cost, gold_cost).cost(n_weak, n_gold), accuracy)

    def pareto(self, among: np.ndarray | None = None) -> list[PointStats]:
        """The paper's rule, a margin a plain dominance check (optuna's included) has no room for:
        cheapest first (most accurate first at equal cost, then first stored), each point on the
        frontier when it beats the last one on it by more than MIN_GAIN."""
        index = np.arange(len(self.points)) if among is None else among
        order = index[np.lexsort((index, -self.accuracy[index], self.cost[index]))]
        frontier: list[PointStats] = []
        best = -math.inf
        for i, accuracy in zip(order.tolist(), self.accuracy[order].tolist()):
            if not frontier or accuracy > best + MIN_GAIN:
                frontier.append(self.points[i])
                best = accuracy
        return frontier

    def best_within(self, budget: float) -> PointStats | None:
        """The most accurate affordable point (the cheaper, then the first stored, of equals)."""
        affordable = np.flatnonzero(self.cost <= budget + 1e-9)
        if not len(affordable):
            return None
        order = np.lexsort((affordable, self.cost[affordable], -self.accuracy[affordable]))
        return self.points[int(affordable[order[0]])]


def pareto_frontier(points: list[PointStats], weak_cost: float, gold_cost: float) -> list[PointStats]:
    return PricedPoints.of(points, weak_cost, gold_cost).pareto()


def best_within(points: list[PointStats], budget: float, weak_cost: float, gold_cost: float) -> PointStats | None:
    """The most accurate affordable point on the whole test set, as the recommendation chooses (recommend.py)."""
    return PricedPoints.of(points, weak_cost, gold_cost).best_within(budget)


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
    priced = PricedPoints.of(points, weak_cost, gold_cost)
    prices = Prices(weak_cost, gold_cost)
    method_of = np.array([p.method for p in points], dtype=object)
    overall = priced.pareto()
    per_method = {m: priced.pareto(np.flatnonzero(method_of == m)) for m in methods}
    best = [priced.best_within(budget) for budget in budgets]
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
        "points": described(sorted(listed, key=lambda p: p.cost(prices))),
        "overall": described(overall),
        "per_method": {m: described(line) for m, line in per_method.items()},
        "best_at_budget": [
            {"budget": budget, "best": described([b])[0] if b is not None else None} for budget, b in zip(budgets, best)
        ],
    }
