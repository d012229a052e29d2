"""More seeds for a leading point whose seeds disagree, before an allocation answers.

A point's seeds split (points.PointStats.seeds_split) when one learned nothing beside ones that
learned, or when their accuracies fall into groups further apart than the test set explains. Its
mean then describes none of its seeds, and whether it leads depends on which group the next training
run lands in: the answer would be decided by a draw. So before answering, an allocation gives such a
leader more seeds, EXTRA_SEEDS in all, and answers from every seed it measured (the recommendation
still warns `unstable_point` if the split remains).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.allocations.search import Point, SearchSpace
from app.db.models import Allocation, StudyPoint, TrialStatus
from app.results.points import group_trials
from app.trials import cache as trial_cache
from worker.engine.spec import Method

# Seeds an allocation may add, in all, to unstable leaders: each is a trial, and a leader split by
# a bad draw needs one or two more runs to show which group is typical.
EXTRA_SEEDS = 2


def seeds_added(allocation: Allocation) -> int:
    """Trials the allocation added beyond its request's seeds."""
    asked = len(allocation.request["seeds"])
    return sum(max(0, len(p.trials) - asked) for p in allocation.points)


def _finished(point: StudyPoint) -> bool:
    return bool(point.trials) and all(t.status == TrialStatus.done for t in point.trials)


def steady(session: Session, allocation: Allocation, space: SearchSpace) -> StudyPoint | None:
    """Give the leading finished point more seeds if its seeds split and the allocation may still add
    some; returns the point (its new trials created, queued unless already stored), else None."""
    left = EXTRA_SEEDS - seeds_added(allocation)
    done = [p for p in allocation.points if _finished(p)]
    stats = group_trials([t for p in done for t in p.trials])
    if left <= 0 or not stats:
        return None
    leader = max(stats, key=lambda s: s.accuracy)
    if not leader.seeds_split:
        return None
    ids = set(leader.trial_ids)
    row = next(p for p in done if {t.id for t in p.trials} <= ids)
    point, request = Point(Method(row.method), row.n_weak, row.n_gold), allocation.request
    first = max(t.seed for t in row.trials) + 1
    for seed in range(first, first + left):
        spec = space.spec(point, seed, task=allocation.task.name, weak_labeler=request["weak_labeler"])
        row.trials.append(trial_cache.get_or_create_trial(session, allocation.task, spec))
    session.flush()
    return row
