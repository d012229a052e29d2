"""Kept point lists (app.results.kept_points): read once however many ask at once, brought up to
date from the rows written since, and never changed under a request that holds them."""

from __future__ import annotations

import threading
import time

from app.results import kept_points
from app.results.points import PointStats, StoredPoint
from app.stats.intervals import StoredVariances


def point(aggregate_id: int, first_trial_id: int, n_weak: int, seed_variance: float, k: int = 3) -> PointStats:
    stored = StoredPoint(aggregate_id, first_trial_id, k, 0.7, 0.7, 0.7, StoredVariances(seed_variance, 0.001),
                         lambda points: None, lambda ids: [None] * len(ids))
    return PointStats("seq_sft", n_weak, 10, "m", "fast", "default", params_key="p", recipe_label="fast",
                      stored=stored)


def test_many_readers_of_one_list_read_it_once():
    kept_points.forget()
    reads = []

    def read_all():
        reads.append(1)
        time.sleep(0.2)
        return [point(1, 1, 0, 0.01)]

    answers = []
    threads = [threading.Thread(target=lambda: answers.append(kept_points.kept("k", 1, read_all, None)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reads) == 1 and len(answers) == 8 and all(a is answers[0] for a in answers)


def test_a_newer_version_reads_only_what_changed_and_leaves_held_points_alone():
    kept_points.forget()
    old = [point(1, 10, 0, 0.010), point(2, 20, 100, 0.012), point(3, 30, 200, 0.011)]
    held = kept_points.kept("k", 5, lambda: old, None)
    assert kept_points.kept("k", 4, None, None) is held  # complete up to 5, so up to 4 too

    since = []
    changed = [point(2, 20, 100, 0.030, k=4), point(4, 15, 300, 0.020)]  # a new seed of 2; a new point
    newer = kept_points.kept("k", 7, None, lambda version: since.append(version) or changed)
    assert since == [5]
    assert [p.stored.aggregate_id for p in newer] == [1, 4, 2, 3]  # first-trial order
    assert newer[2] is changed[0] and newer[1] is changed[1]
    # The prior moved with the new seed variances: every point of the recipe lends the new one; the
    # points the first list holds were copied, not changed.
    assert len({id(p.borrowed_seed_variance) for p in newer}) == 1
    assert all(p.borrowed_seed_variance == newer[0].borrowed_seed_variance for p in newer)
    assert held[0] is old[0] and old[0].borrowed_seed_variance is None and newer[0] is not old[0]
