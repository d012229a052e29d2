"""What an allocation's stop rule concludes from the points it has measured.

The measured points (every seed's test accuracy, by method and the weak share that bought them) are
fitted by one Gaussian process over (share, method); joint draws of it over every untried allocation
the search could still ask (0 to 1 in SHARE_STEP steps, as the sampler proposes them) give the chance
that the best of them beats the best measured mean by more than a point, or by more than one trial's
scatter between seeds where that is larger (search_strategies.untried_chances, stop_margin). When that
chance is below STOP_PROBABILITY, more points are unlikely to change the answer by more than the
allocation's own trials could show: the search is confident. An allocation then asks no more
points (`stop_when_confident`, on by default); every finished allocation reports the
verdict, so a lead sees whether its `max_trials` were enough.
"""

from __future__ import annotations

from app.allocations.search import SHARE_STEP, Point, SearchSpace
from app.allocations.strategies import MARGIN, STOP_PROBABILITY, Candidate, stop_margin, untried_chances
from app.db.models import StudyPoint, TrialStatus
from worker.engine.spec import Method


def candidates(space: SearchSpace) -> dict[Candidate, Point]:
    """Every (method, share) the sampler can propose, with the label counts it buys; shares that buy
    the same counts are one candidate (the lowest share)."""
    found: dict[Candidate, Point] = {}
    seen: set[Point] = set()
    steps = round(1 / SHARE_STEP)
    for method in space.methods:
        for i in range(steps + 1):
            share = round(i * SHARE_STEP, 6)
            point = space.point_for(method, share)
            if point is not None and point not in seen:
                seen.add(point)
                found[Candidate(method.value, share)] = point
    return found


def verdict(space: SearchSpace, points: list[StudyPoint]) -> dict | None:
    """The stop rule's conclusion over the allocation's done points; None before two are done."""
    options = candidates(space)
    by_point = {point: candidate for candidate, point in options.items()}
    results: dict[Candidate, list[float]] = {}
    for row in points:
        done = [t.test_accuracy for t in row.trials if t.status == TrialStatus.done and t.test_accuracy is not None]
        candidate = by_point.get(Point(Method(row.method), row.n_weak, row.n_gold))
        if done and candidate is not None:
            results.setdefault(candidate, []).extend(done)
    if len(results) < 2:
        return None
    margin = stop_margin(results, MARGIN)
    found = untried_chances(results, list(options), margin)
    confident = found.any < STOP_PROBABILITY
    likeliest = found.likeliest
    where = options[likeliest] if likeliest else None
    if confident:
        says = (f"the chance that an untried allocation beats the best measured one by more than {margin:.3f} is "
                f"{found.any:.1%}, below {STOP_PROBABILITY:.0%}: more points are unlikely to change the answer")
    else:
        says = (f"a {found.any:.0%} chance that an untried allocation beats the best measured one by more than "
                f"{margin:.3f} (likeliest: {where.method.value} at {where.n_weak} weak / {where.n_gold} gold, "
                f"{found.each[likeliest]:.0%}): more points could change the answer")
    return {
        "confident": confident, "margin": round(margin, 4), "stop_probability": STOP_PROBABILITY,
        "chance_any_beats": round(found.any, 4),
        "likeliest_better": None if where is None else {
            "method": where.method.value, "n_weak": where.n_weak, "n_gold": where.n_gold,
            "weak_share": likeliest.share, "probability": round(found.each[likeliest], 4)},
        "says": says,
    }
