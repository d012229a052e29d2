"""The recommendation of an allocation: the best point, its ties, its interval, and its warnings.

The choice is made on the selection half of the test set; the expected accuracy and its interval
come from the held-out half, which played no part in the choice. The best point is compared with
every other point on the same selection examples (paired, intervals.compare); the points it cannot
be told apart from at the stated level are its ties, and among them the cheapest, then the
simplest (one kind of label before a mix, then the plainer method), is recommended: paying more
for an indistinguishable accuracy is not a recommendation anyone should follow.
"""

from __future__ import annotations

from collections.abc import Callable

from .intervals import LEVEL, Scores, beats_chance, compare
from .points import PointStats

# Plainer methods first: a tie goes to the method with fewer moving parts.
METHOD_SIMPLICITY = ("seq_sft", "icl", "prompted_sft", "logconf_sft", "uncertainty_sft")
# Weak labels within this many points of the majority rate teach nothing (see warnings).
WEAK_LABEL_MARGIN = 0.02


def simplicity(point: PointStats) -> tuple[int, int]:
    kinds = (point.n_weak > 0) + (point.n_gold > 0)
    rank = METHOD_SIMPLICITY.index(point.method) if point.method in METHOD_SIMPLICITY else len(METHOD_SIMPLICITY)
    return kinds, rank


def choose(points: list[PointStats], weak_cost: float, gold_cost: float, level: float = LEVEL,
           scores: Callable[[PointStats], Scores] = lambda p: p.scores("selection")):
    """(recommended, best, ties with their comparisons): ties are the points the best cannot beat.

    `scores` gives the data the choice is made on (by default the selection half).
    """
    by_point = {id(p): scores(p) for p in points}
    best = max(points, key=lambda p: (by_point[id(p)].mean, -p.cost(weak_cost, gold_cost)))
    comparisons = {}
    for p in points:
        if p is not best:
            comparisons[id(p)] = compare(by_point[id(best)], by_point[id(p)], level, best.borrowed_seed_variance)
    ties = [p for p in points if p is not best and comparisons[id(p)].tie]
    recommended = min([best, *ties], key=lambda p: (round(p.cost(weak_cost, gold_cost), 6), simplicity(p)))
    return recommended, best, ties, comparisons


def warnings_for(
    points: list[PointStats], recommended: PointStats, ties: list[PointStats], majority_rate: float,
    weak_label_accuracy: float | None, level: float = LEVEL,
) -> list[dict]:
    """What a person deciding on this answer would want pointed out, each as {code, message}."""
    out = []
    if not any(beats_chance(p.interval("test", level), majority_rate) for p in points):
        out.append({"code": "chance", "message": (
            f"nothing here beats chance: every point's {level:.0%} interval reaches the majority-class rate "
            f"{majority_rate:.3f} (always answering the commoner class); more labels, another model or "
            "another method may, but these trials do not show it")})
    elif not beats_chance(recommended.interval("holdout", level), majority_rate):
        out.append({"code": "chance", "message": (
            f"the recommended allocation's held-out {level:.0%} interval reaches the majority-class rate "
            f"{majority_rate:.3f}: it may not beat always answering the commoner class")})
    if weak_label_accuracy is not None and weak_label_accuracy <= majority_rate + WEAK_LABEL_MARGIN:
        out.append({"code": "weak_labels_at_chance", "message": (
            f"the weak labels are {weak_label_accuracy:.3f} accurate, at or below the majority-class rate "
            f"{majority_rate:.3f}: any point with weak labels learns from noise")})
    if ties:
        out.append({"code": "tie", "message": (
            f"{len(ties) + 1} allocations cannot be told apart at {level:.0%} on the selection half; the "
            "cheapest (then simplest) of them is recommended")})
    note = recommended.interval("holdout", level).note
    if note:
        out.append({"code": "few_seeds", "message": note})
    return out


def recommendation(
    points: list[PointStats], request: dict, majority_rate: float, weak_label_accuracy: float | None = None,
    level: float = LEVEL,
) -> dict:
    weak_cost, gold_cost = request["weak_cost"], request["gold_cost"]
    recommended, best, ties, comparisons = choose(points, weak_cost, gold_cost, level)
    summary = recommended.summary(weak_cost, gold_cost)
    held_out = recommended.interval("holdout", level)
    runner_up = max((p for p in points if p is not best), key=lambda p: p.selection_accuracy, default=None)
    budget = request.get("budget")
    return {
        **summary,
        "expected_accuracy": round(held_out.estimate, 4),
        "expected_accuracy_spread": summary["holdout_spread"],
        "expected_accuracy_interval": held_out.as_dict(),
        "level": level,
        "majority_rate": round(majority_rate, 4),
        "unspent": round(budget - summary["cost"], 6) if budget is not None else None,
        "best_on_selection": _ref(best, weak_cost, gold_cost),
        "runner_up": None if runner_up is None else {
            **_ref(runner_up, weak_cost, gold_cost),
            "best_minus_it": comparisons[id(runner_up)].as_dict(),
        },
        "ties": [{**_ref(p, weak_cost, gold_cost), "best_minus_it": comparisons[id(p)].as_dict()} for p in ties],
        "tie": bool(ties),
        "warnings": warnings_for(points, recommended, ties, majority_rate, weak_label_accuracy, level),
        "accuracy_note": (
            "chosen on selection_accuracy (first half of the test set), the cheapest of the points the best "
            "cannot be told from there; expected_accuracy is its mean over seeds on the second half, which "
            f"played no part in the choice, with a {level:.0%} interval over test examples and seeds"
        ),
    }


def _ref(point: PointStats, weak_cost: float, gold_cost: float) -> dict:
    return {
        "method": point.method,
        "n_weak": point.n_weak,
        "n_gold": point.n_gold,
        "cost": round(point.cost(weak_cost, gold_cost), 6),
        "selection_accuracy": round(point.selection_accuracy, 4),
    }
