"""Point lists a process keeps between reads, brought up to date by reading only what changed.

A frontier needs every point of a recipe; reading them all is the cost of a cold read (about half a
second at 100k trials). Trials finish all the time while allocations run, and each one moves the
task's results_version, so a list named by that version was thrown away at every finish and the next
dashboard refresh paid the whole read again. Here a list is named by what it lists (task, model,
recipe) and carries the version it is complete up to; a later read with a newer version fetches
only the aggregate rows written since (their `revision`), puts them in place and lends the new
seed-variance prior to the recipes they belong to.

Lists are shared between requests, so nothing here changes a point another request may hold: a
point whose prior moves is replaced by a copy. One thread per list reads at a time; others asking
for the same list wait for it rather than read it again (a hundred cold requests used to read a
hundred times).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from cachetools import LRUCache

from app.results.points import PointStats, point_recipe_key, recipe_prior

# A few tasks x models x recipes; least recently used out.
MAX_LISTS = 32


@dataclass(frozen=True)
class _Kept:
    version: int  # every aggregate row with revision <= version is in `points`
    points: list[PointStats]


_lists: LRUCache = LRUCache(maxsize=MAX_LISTS)
# One lock per list (more than lists: a lock evicted while held only lets a second reader in).
_locks: LRUCache = LRUCache(maxsize=4 * MAX_LISTS)
_guard = threading.Lock()


def _lock(key: Hashable) -> threading.Lock:
    with _guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.Lock()
        return lock


def kept(key: Hashable, version: int, read_all: Callable[[], list[PointStats]],
         read_since: Callable[[int], list[PointStats]]) -> list[PointStats]:
    """The list named `key`, complete at least up to `version`.

    `read_all()` reads every point, priors lent; `read_since(v)` the points whose rows were written
    after version v, priors not lent. The list returned is shared: callers must not change it.
    """
    with _lock(key):
        with _guard:
            found = _lists.get(key)
        if found is not None and found.version >= version:
            return found.points
        points = read_all() if found is None else merged(found.points, read_since(found.version))
        with _guard:
            _lists[key] = _Kept(version, points)
        return points


def merged(points: list[PointStats], changed: list[PointStats]) -> list[PointStats]:
    """`points` with `changed` in place of their older rows (or added), in first-trial order, each
    recipe that changed lending its new prior. Equal to reading every row afresh."""
    if not changed:
        return points
    replaced = {p.stored.aggregate_id for p in changed}
    out = [p for p in points if p.stored.aggregate_id not in replaced] + changed
    out.sort(key=lambda p: p.stored.first_trial_id)
    touched = {point_recipe_key(p) for p in changed}
    by_recipe: dict[tuple, list[int]] = {}
    for i, p in enumerate(out):
        if (key := point_recipe_key(p)) in touched:
            by_recipe.setdefault(key, []).append(i)
    fresh = {id(p) for p in changed}
    for indices in by_recipe.values():
        prior = recipe_prior(out[i] for i in indices)
        for i in indices:
            p = out[i]
            if id(p) in fresh:
                p.borrowed_seed_variance = prior  # read just now: no other request holds it
            elif p.borrowed_seed_variance != prior:
                out[i] = dataclasses.replace(p, borrowed_seed_variance=prior, _intervals={})
    return out


def forget() -> None:
    """Drop every kept list (tests that delete trials, which only a task's deletion does otherwise)."""
    with _guard:
        _lists.clear()
