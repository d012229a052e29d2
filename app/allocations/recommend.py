"""The recommendation of an allocation: the best point, its ties, its interval, and its warnings.

The choice and the expected accuracy both use the whole test set. Choosing on one half and
reporting the other (what labelmix did first) was measured against it on fresh seeds and unseen
examples (`python -m bench.calibration`, docs/calibration): the halves removed none of the optimism
(bias +0.012 vs +0.014 with three seeds; it comes from the seeds, which both halves share), while
the whole set gave a smaller error (rmse 0.039 vs 0.042), narrower intervals (median half-width
0.036 vs 0.046) and 92% coverage at 90%. The best point is compared with every other point on the same examples (paired,
intervals.compare); the points it cannot
be told apart from at the stated level are its ties, and are reported as such. Among the best and
the ties shown to be within MARGIN of it, the cheapest, then the simplest (one kind of label before
a mix, then the plainer method) is recommended: paying more for an equivalent accuracy is not a
recommendation anyone should follow, and a point that ties only because it is noisy is no bargain.
"""

from __future__ import annotations

from collections.abc import Callable

from app.results.points import PointStats
from app.stats.intervals import LEVEL, Scores, beats_chance, compare
from app.stats.prices import Prices

# Plainer methods first: a tie goes to the method with fewer moving parts.
METHOD_SIMPLICITY = ("seq_sft", "icl", "prompted_sft", "logconf_sft", "uncertainty_sft")
# A point shown to be at most this much less accurate than the best may replace it when it is
# cheaper or simpler. Preferring any point the data merely cannot tell from the best (a noisy
# all-gold point "ties" with everything, then wins on simplicity) was measured by `labelmix
# calibrate` on word_sentiment to cost a mean regret of 0.061 against 0.010 with two seeds, 0.038
# against 0.012 with three.
MARGIN = 0.01
# A recommendation leaving more than this share of its budget unspent is outside the evidence.
UNSPENT_SHARE = 0.10
# Weak labels within this many points of the majority rate teach nothing (see warnings).
WEAK_LABEL_MARGIN = 0.02


def simplicity(point: PointStats) -> tuple[int, int]:
    kinds = (point.n_weak > 0) + (point.n_gold > 0)
    rank = METHOD_SIMPLICITY.index(point.method) if point.method in METHOD_SIMPLICITY else len(METHOD_SIMPLICITY)
    return kinds, rank


def choose(points: list[PointStats], weak_cost: float, gold_cost: float, level: float = LEVEL,
           scores: Callable[[PointStats], Scores] = lambda p: p.scores("test"), margin: float = MARGIN):
    """(recommended, best, ties, comparisons of the best with every other point).

    Ties are the points the best cannot be told from (the difference's interval holds 0). The
    recommendation is the cheapest, then simplest, of the best and the points shown to be at most
    `margin` worse (the upper end of the interval of best minus it is within the margin): a tie that
    only says "too noisy to tell" is reported, never rewarded. `scores` gives the data the choice
    is made on (by default the whole test set).
    """
    prices = Prices(weak_cost, gold_cost)
    by_point = {id(p): scores(p) for p in points}
    best = max(points, key=lambda p: (by_point[id(p)].mean, -p.cost(prices)))
    comparisons = {}
    for p in points:
        if p is not best:
            comparisons[id(p)] = compare(by_point[id(best)], by_point[id(p)], level, best.borrowed_seed_variance)
    ties = [p for p in points if p is not best and comparisons[id(p)].tie]
    # Shown within the margin, whether or not the difference is also shown to be above zero.
    close = [p for p in points if p is not best and comparisons[id(p)].high <= margin]
    recommended = min([best, *close], key=lambda p: (round(p.cost(prices), 6), simplicity(p)))
    return recommended, best, ties, comparisons


def warnings_for(
    points: list[PointStats], recommended: PointStats, ties: list[PointStats], majority_rate: float,
    weak_label_accuracy: float | None, level: float = LEVEL, unspent: tuple[float, float] | None = None,
    best: PointStats | None = None,
) -> list[dict]:
    """What a person deciding on this answer would want pointed out, each as {code, message}.

    `unspent` is (budget, cost of the recommendation) when the answer is for a budget; `best` the most
    accurate point when it is not the recommended one.
    """
    out = []
    if not any(beats_chance(p.interval("test", level), majority_rate) for p in points):
        out.append({"code": "chance", "message": (
            f"nothing here beats chance: every point's {level:.0%} interval reaches the majority-class rate "
            f"{majority_rate:.3f} (always answering the commoner class); more labels, another model or "
            "another method may, but these trials do not show it")})
    elif not beats_chance(recommended.interval("test", level), majority_rate):
        out.append({"code": "chance", "message": (
            f"the recommended allocation's {level:.0%} interval reaches the majority-class rate "
            f"{majority_rate:.3f}: it may not beat always answering the commoner class")})
    if weak_label_accuracy is not None and weak_label_accuracy <= majority_rate + WEAK_LABEL_MARGIN:
        out.append({"code": "weak_labels_at_chance", "message": (
            f"the weak labels are {weak_label_accuracy:.3f} accurate, at or below the majority-class rate "
            f"{majority_rate:.3f}: any point with weak labels learns from noise")})
    if ties:
        out.append({"code": "tie", "message": (
            f"{len(ties) + 1} allocations cannot be told apart at {level:.0%}; the "
            f"cheapest (then simplest) of those shown within {MARGIN:.2f} of the best is recommended, and more "
            "seeds would separate the rest")})
    if unspent is not None:
        budget, cost = unspent
        if budget - cost > UNSPENT_SHARE * budget:
            out.append({"code": "outside_evidence", "message": (
                f"the recommendation spends ${cost:g} of ${budget:g}: no measured point spends the rest (the pool "
                f"may hold too few weak labels, or no such point was tried), so what the other ${budget - cost:g} "
                "would buy is not measured; the predicted frontier (predict=true) or GET /plan estimates it")})
    out += _unstable(recommended, best)
    out += _no_elicitation(points, majority_rate, level)
    note = recommended.interval("test", level).note
    if note:
        out.append({"code": "few_seeds", "message": note})
    return out


def _unstable(recommended: PointStats, best: PointStats | None) -> list[dict]:
    """`unstable_point`: the recommended point's seeds, or the best's, fall into groups (points.split):
    its mean accuracy describes none of them, and another seed may land in either group."""
    out = []
    for name, point in (("recommended", recommended), ("best", best)):
        if point is None or (name == "best" and point is recommended) or not point.seeds_split:
            continue
        accuracies = ", ".join(f"{a:.3f}" for a in sorted(point.test))
        if point.seeds_failed and point.seeds_learned:
            failed = ", ".join(map(str, point.failed_seeds))
            why = f"seed(s) {failed} learned nothing (test AUROC within chance) while others learned"
        else:
            why = "its seeds' accuracies fall into groups further apart than the test set explains"
        out.append({"code": "unstable_point", "message": (
            f"the {name} point ({point.method}, {point.n_weak} weak + {point.n_gold} gold labels) is "
            f"unstable: {why} (accuracies {accuracies}); its mean describes none of its seeds, and one more "
            "training run may land in either group: more seeds would show which is typical, a steadier "
            "recipe would remove it")})
    return out


def _no_elicitation(points: list[PointStats], majority_rate: float, level: float) -> list[dict]:
    """`no_elicitation`: at the most gold labels measured without weak labels, the strong model
    learned nothing: no seed learned, or the point's interval reaches the majority rate (all that
    seeds stored before the engine said can show). What the mixes score then comes from the weak
    labeler, not from eliciting the model; a method that learned from that gold alone clears it."""
    gold_only = [p for p in points if p.n_weak == 0 and p.n_gold > 0]
    if not gold_only:
        return []
    most = max(p.n_gold for p in gold_only)
    largest = [p for p in gold_only if p.n_gold == most]
    if any(_learned(p, majority_rate, level) for p in largest):
        return []
    if any(p.seeds_failed and not p.seeds_learned for p in largest):
        why = "no seed learned (test AUROC within chance)"
    else:
        why = f"its accuracy's {level:.0%} interval reaches the majority-class rate {majority_rate:.3f}"
    return [{"code": "no_elicitation", "message": (
        f"the strong model did not learn from gold labels alone: with {most} gold labels and no weak ones "
        f"(the most gold tried), {why}; what the points with weak labels score comes from the weak labeler, "
        "so this answer is about the weak labeler, not about eliciting the strong model")}]


def _learned(point: PointStats, majority_rate: float, level: float) -> bool:
    """Gold alone taught this point something: not every seed that says whether it learned says it
    failed (TrialResult.learned; None is unknown), and its interval clears the majority rate."""
    if point.seeds_failed and not point.seeds_learned:
        return False
    return beats_chance(point.interval("test", level), majority_rate)


def recommendation(
    points: list[PointStats], request: dict, majority_rate: float, weak_label_accuracy: float | None = None,
    level: float = LEVEL,
) -> dict:
    weak_cost, gold_cost = request["weak_cost"], request["gold_cost"]
    recommended, best, ties, comparisons = choose(points, weak_cost, gold_cost, level)
    summary = recommended.summary(weak_cost, gold_cost)
    estimate = recommended.interval("test", level)
    runner_up = max((p for p in points if p is not best), key=lambda p: p.accuracy, default=None)
    budget = request.get("budget")
    return {
        **summary,
        "expected_accuracy": round(estimate.estimate, 4),
        "expected_accuracy_spread": summary["accuracy_spread"],
        "expected_accuracy_interval": estimate.as_dict(),
        "level": level,
        "majority_rate": round(majority_rate, 4),
        "unspent": round(budget - summary["cost"], 6) if budget is not None else None,
        "best": _ref(best, weak_cost, gold_cost),
        "runner_up": None if runner_up is None else {
            **_ref(runner_up, weak_cost, gold_cost),
            "best_minus_it": comparisons[id(runner_up)].as_dict(),
        },
        "ties": [{**_ref(p, weak_cost, gold_cost), "best_minus_it": comparisons[id(p)].as_dict()} for p in ties],
        "tie": bool(ties),
        "warnings": warnings_for(points, recommended, ties, majority_rate, weak_label_accuracy, level,
                                 unspent=(budget, summary["cost"]) if budget is not None else None,
                                 best=best),
        "accuracy_note": (
            f"chosen and measured on the whole test set: the best point, or the cheapest within {MARGIN:.2f} of it; "
            f"{level:.0%} interval over seeds and test examples (coverage measured: docs/calibration)"
        ),
    }


def _ref(point: PointStats, weak_cost: float, gold_cost: float) -> dict:
    return {
        "method": point.method,
        "n_weak": point.n_weak,
        "n_gold": point.n_gold,
        "cost": round(point.cost(Prices(weak_cost, gold_cost)), 6),
        "accuracy": round(point.accuracy, 4),
    }
