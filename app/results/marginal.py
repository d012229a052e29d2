"""What the next dollars would buy, read off stored trials near an allocation (no training).

The base is the recommended allocation (a method with n_weak and n_gold labels) or, when none is
given, the best stored point within the budget (chosen as the frontier chooses). Its neighbours
are stored points of the same model, method, weak labeler and hyperparameters that keep every
label of the base and buy more: a "more weak" neighbour spends at least DIRECTION_SHARE of its
extra dollars on weak labels, a "more gold" one on gold labels. The nearest neighbour each way
(least extra spend, at most `max_extra`) gives the gain: its test accuracy minus the base's (both
means over seeds), per extra dollar. Nothing is interpolated: when no stored trial lies that way,
the gain is null and the reason says so.

Beside the neighbours, `from_surface` reads the same question off the recipe's learning surface
(learning.py), which answers between measured points too, with the noise of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from app.stats.prices import Prices

from ..stats.intervals import compare
from ..stats.surface import marginal_from_surface
from . import learning
from .frontier import best_within
from .points import PointStats, RecipeKey, point_recipe_key

# A neighbour counts as "more weak" (or "more gold") when this share of its extra spend went there.
DIRECTION_SHARE = 0.75

GroupKey = RecipeKey


def keyed(points: Iterable[PointStats]) -> list[tuple[GroupKey, PointStats]]:
    """Points with the key of the training recipe they share with their neighbours."""
    return [(point_recipe_key(p), p) for p in points]


def _step(
    direction: str,
    base: PointStats,
    recipe: GroupKey,
    points: list[tuple[GroupKey, PointStats]],
    weak_cost: float,
    gold_cost: float,
    max_extra: float,
) -> dict:
    candidates = []
    prices = Prices(weak_cost, gold_cost)
    for key, point in points:
        if key != recipe or point is base or point.n_weak < base.n_weak or point.n_gold < base.n_gold:
            continue
        extra_weak, extra_gold = point.n_weak - base.n_weak, point.n_gold - base.n_gold
        extra = prices.cost(extra_weak, extra_gold)
        if extra <= 1e-9 or extra > max_extra + 1e-9:
            continue
        spend_weak, spend_gold = prices.spend(extra_weak, extra_gold)
        share = (spend_weak if direction == "weak" else spend_gold) / extra
        if share >= DIRECTION_SHARE:
            candidates.append((extra, -point.selection_accuracy, point, extra_weak, extra_gold))
    if not candidates:
        kind = "weak" if direction == "weak" else "gold"
        return {
            "direction": direction,
            "point": None,
            "extra_weak": None,
            "extra_gold": None,
            "extra_spend": None,
            "accuracy_gain": None,
            "gain_per_dollar": None,
            "noise": None,
            "gain_interval": None,
            "reason": (
                f"no stored {base.method} trial on {base.model} adds {kind} labels to these {base.n_gold} gold and "
                f"{base.n_weak} weak (at least {DIRECTION_SHARE:.0%} of the extra spend, at most ${max_extra:g} more)"
            ),
        }
    extra, _, point, extra_weak, extra_gold = min(candidates, key=lambda c: c[:2])
    gain = point.accuracy - base.accuracy
    return {
        "direction": direction,
        "point": point.summary(weak_cost, gold_cost),
        "extra_weak": extra_weak,
        "extra_gold": extra_gold,
        "extra_spend": round(extra, 6),
        "accuracy_gain": round(gain, 4),
        "gain_per_dollar": round(gain / extra, 6),
        # The seed spread of the two points together: a gain inside it may be noise.
        "noise": round(math.hypot(base.accuracy_spread, point.accuracy_spread), 4),
        # The gain with its interval, paired on the test examples both were scored on.
        "gain_interval": compare(point.paired_scores(), base.paired_scores(), borrowed=base.borrowed_seed_variance).as_dict(),
        "reason": None,
    }


def marginal(
    measured: Iterable[PointStats],
    weak_cost: float,
    gold_cost: float,
    budget: float,
    max_extra: float | None = None,
    anchor: tuple[str, int, int] | None = None,
    step: float | None = None,
) -> dict:
    """The gain per extra dollar from more weak vs more gold labels around the base allocation."""
    points = keyed(measured)
    max_extra = budget if max_extra is None else max_extra
    answer = {
        "weak_cost": weak_cost,
        "gold_cost": gold_cost,
        "budget": budget,
        "max_extra": max_extra,
        "direction_share": DIRECTION_SHARE,
        "base": None,
        "more_weak": None,
        "more_gold": None,
        "better": None,
        "reason": None,
        "from_surface": None,
    }
    if anchor is not None:
        method, n_weak, n_gold = anchor
        matches = [(k, p) for k, p in points if (p.method, p.n_weak, p.n_gold) == (method, n_weak, n_gold)]
        if not matches:
            answer["reason"] = f"no stored trial of {method} with {n_weak} weak and {n_gold} gold labels"
            return answer
        recipe, base = max(matches, key=lambda kp: (len(kp[1].seeds), kp[1].selection_accuracy))
    else:
        base = best_within([p for _, p in points], budget, weak_cost, gold_cost)
        if base is None:
            answer["reason"] = f"no stored trial costs ${budget:g} or less at these prices"
            return answer
        recipe = next(k for k, p in points if p is base)
    answer["base"] = base.summary(weak_cost, gold_cost)
    steps = {d: _step(d, base, recipe, points, weak_cost, gold_cost, max_extra) for d in ("weak", "gold")}
    answer["more_weak"], answer["more_gold"] = steps["weak"], steps["gold"]
    rates = {d: s["gain_per_dollar"] for d, s in steps.items() if s["gain_per_dollar"] is not None}
    if len(rates) == 2 and rates["weak"] != rates["gold"]:
        answer["better"] = max(rates, key=rates.get)
    answer["from_surface"] = _from_surface(base, [p for k, p in points if k == recipe], weak_cost, gold_cost, step)
    return answer


def _from_surface(base: PointStats, recipe_points: list[PointStats], weak_cost: float, gold_cost: float,
                  step: float | None) -> dict:
    """The surface's answer around the base: a step of `step` dollars each way (default: a quarter budget)."""
    surfaces, missing = learning.surfaces_by_method([p for p in recipe_points if p.method == base.method])
    if base.method not in surfaces:
        return {"reason": f"no learning surface for {base.method}: {missing.get(base.method, 'no points')}"}
    cost = base.cost(Prices(weak_cost, gold_cost))
    step = max(step or cost / 4, weak_cost, gold_cost)  # at least one label of each kind
    answer = marginal_from_surface(surfaces[base.method], base.n_weak, base.n_gold, weak_cost, gold_cost, step)
    return {**answer, "surface": learning.describe(surfaces, {})[0], "reason": None}
