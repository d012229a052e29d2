"""Trials grouped into points (same task, model, method and label counts; several seeds).

Choices and reports use the whole test set (recommend.py says why); the engine's halves,
`selection_accuracy` and `holdout_accuracy`, are kept for stored results and their readers. Any
part's interval (intervals.py) is built from the seeds' per-example correctness on that part.

A point also says whether its seeds agree: how many learned nothing at all (the engine's
TrialResult.learned) and whether their accuracies fall into groups (seeds_split). A mean over a
seed at chance and a seed at 0.85 describes neither, and no interval says so.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from app.allocations.search import Point
from app.db.models import Trial
from app.stats.intervals import (
    LEVEL,
    Interval,
    Scores,
    SeedVariance,
    StoredVariances,
    interval,
    seed_prior,
    stack_records,
)
from app.stats.prices import Prices
from app.trials.records import TrialRecord
from worker.engine.metrics import unpack_correct
from worker.engine.spec import Method

Part = Literal["test", "selection", "holdout"]

# Seeds split into groups when two neighbouring seed accuracies (sorted) are further apart than this
# many standard errors of the test sample, sqrt((a(1-a) + b(1-b)) / n). That error is what the test
# examples alone would put between two equally good seeds; it is the unpaired one, an upper bound,
# because seeds scored on the same examples agree on most of them (so it errs towards no split). Two
# equally good seeds are 4 such errors apart with probability 6e-5, and among 10 (the most seeds a
# request asks for) the largest gap between neighbours never was in 2 million simulated draws: a gap
# beyond it means the seeds were trained to different places, not scored unluckily. Measured on
# the stored calibration trials (docs/calibration: 24 points x 6 seeds, 1,000 test examples, engine
# version 5), 20 points had gaps of at most 3.2 such errors; the other four, 4.6 to 10.0: word_sentiment's
# all-gold $64 and $256 (0.846 beside 0.53-0.66; 0.72 beside 0.84-0.91) and two of its mixes with one
# seed far out. (Engine version 1's trials: at most 2.6, and 5.1 to 10.8 at the same four.)
SPLIT_Z = 4.0


@dataclass(slots=True)
class StoredPoint:
    """Not a point of its own: the part of a PointStats read from its aggregate row. What it says at once (point_aggregates): its seeds' count and mean
    accuracies (statistics.fmean of its lists, as PointStats computes them) and the test part's
    variances; its per-trial lists and per-example records are loaded only for points described."""

    aggregate_id: int
    first_trial_id: int
    k: int
    test_mean: float
    selection_mean: float
    holdout_mean: float
    variances: StoredVariances
    load_details: Callable[[list[PointStats]], None]
    load_correct: Callable[[list[int]], list[np.ndarray | None]]


def with_details(points: Iterable[PointStats]) -> None:
    """Load the per-trial lists of every point here read from an aggregate, one query per source."""
    waiting: dict[int, tuple[Callable, list[PointStats]]] = {}
    for p in points:
        if p.stored is not None and not p.trial_ids:
            waiting.setdefault(id(p.stored.load_details), (p.stored.load_details, []))[1].append(p)
    for load, group in waiting.values():
        load(list({id(p): p for p in group}.values()))


@dataclass
class PointStats:
    """A Point (allocations.search) as measured: its recipe and its seeds' trials, with the statistics
    over them. `point` is the bare value."""

    method: str
    n_weak: int
    n_gold: int
    model: str
    recipe: str = ""
    weak_labeler: str = ""
    params_key: str = ""
    recipe_label: str = ""
    trial_ids: list[int] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    selection: list[float] = field(default_factory=list)
    holdout: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    n_test: list[int] = field(default_factory=list)
    correct: list[np.ndarray | None] = field(default_factory=list)
    # Per seed: whether it learned at all (TrialResult.learned); None for trials stored before.
    learned: list[bool | None] = field(default_factory=list)
    # The recipe's seed-variance prior: moderates a few-seed point's own, lent to a one-seed point.
    borrowed_seed_variance: SeedVariance | None = None
    # A point read from its aggregate row: its lists above are loaded when first needed.
    stored: StoredPoint | None = field(default=None, repr=False)
    _intervals: dict = field(default_factory=dict, repr=False, compare=False)

    def _details(self) -> None:
        if self.stored is not None and not self.trial_ids:
            self.stored.load_details([self])

    @property
    def k(self) -> int:
        """Its number of seeds (trials)."""
        return self.stored.k if self.stored is not None else len(self.test)

    def seed_variance(self) -> float | None:
        """The test accuracy's sample variance over seeds (None with one seed)."""
        if self.stored is not None:
            return self.stored.variances.seed
        return self.scores("test").seed_variance()

    def scores(self, part: Part = "test") -> Scores:
        """Per-seed accuracies on a part of the test set, with per-example correctness when recorded.

        The halves are the engine's: the first n // 2 examples select, the rest are held out.
        """
        self._details()
        accuracies = {"test": self.test, "selection": self.selection, "holdout": self.holdout}[part]
        n = min(self.n_test) if self.n_test else 0
        half = n // 2
        lo, hi = {"test": (0, n), "selection": (0, half), "holdout": (half, n)}[part]
        matrix = stack_records(self.correct, self.n_test)
        if matrix is None and part == "test" and self.stored is not None:
            return Scores(list(accuracies), hi - lo, None, self.stored.variances)
        return Scores(list(accuracies), hi - lo, None if matrix is None else matrix[:, lo:hi])

    def paired_scores(self) -> Scores:
        """The test part with its per-example records, loaded now for a point read from its aggregate."""
        self._details()
        if not self.correct and self.stored is not None:
            self.correct = self.stored.load_correct(self.trial_ids)
        return self.scores("test")

    def interval(self, part: Part = "test", level: float = LEVEL) -> Interval:
        # Kept: a frontier describes a point in its Pareto sets and budget table too. The point's
        # trials and borrowed variance are settled by group_trials before anything asks.
        if (part, level) not in self._intervals:
            self._intervals[part, level] = interval(self.scores(part), level, self.borrowed_seed_variance)
        return self._intervals[part, level]

    # Cached: sorting and Pareto sets ask each point's accuracy many times. A point's trials are all
    # in before anything asks (group_trials, point_aggregates.read_points).
    @cached_property
    def selection_accuracy(self) -> float:
        return self.stored.selection_mean if self.stored is not None else statistics.fmean(self.selection)

    @cached_property
    def holdout_accuracy(self) -> float:
        return self.stored.holdout_mean if self.stored is not None else statistics.fmean(self.holdout)

    @cached_property
    def accuracy(self) -> float:
        return self.stored.test_mean if self.stored is not None else statistics.fmean(self.test)

    @property
    def accuracy_spread(self) -> float:
        """Standard deviation of the test accuracy over seeds (0 with one seed)."""
        self._details()
        return _stdev(self.test)

    @property
    def holdout_spread(self) -> float:
        self._details()
        return _stdev(self.holdout)

    @property
    def seeds_failed(self) -> int:
        """Its seeds that learned nothing (test AUROC not clearly above 0.5); seeds stored before the
        engine said are not counted."""
        return len(self.failed_seeds)

    @property
    def seeds_learned(self) -> int:
        """Its seeds shown to have learned (test AUROC clearly above 0.5)."""
        self._details()
        return sum(learned is True for learned in self.learned)

    @property
    def failed_seeds(self) -> list[int]:
        """The seeds counted by seeds_failed."""
        self._details()
        return [seed for seed, learned in zip(self.seeds, self.learned) if learned is False]

    @property
    def seeds_split(self) -> bool:
        """Its seeds fall into groups: some learned nothing while others learned, or two neighbouring
        seed accuracies are further apart than the test sample explains (SPLIT_Z)."""
        self._details()
        return split(self.test, self.learned, min(self.n_test) if self.n_test else 0)

    @property
    def point(self) -> Point:
        return Point(Method(self.method), self.n_weak, self.n_gold)

    def cost(self, prices: Prices) -> float:
        return self.point.cost(prices)

    @property
    def regime(self) -> str:
        if self.n_weak == 0:
            return "quality-dominant"
        if self.n_gold == 0:
            return "quantity-dominant"
        return "mixed"

    def summary(self, weak_cost: float, gold_cost: float) -> dict:
        self._details()
        spend_weak, spend_gold = Prices(weak_cost, gold_cost).spend(self.n_weak, self.n_gold)
        total = spend_weak + spend_gold
        labels = self.n_weak + self.n_gold
        return {
            "method": self.method,
            "model": self.model,
            "n_weak": self.n_weak,
            "n_gold": self.n_gold,
            "spend_weak": round(spend_weak, 6),
            "spend_gold": round(spend_gold, 6),
            "cost": round(total, 6),
            "weak_share_of_labels": round(self.n_weak / labels, 4) if labels else 0.0,
            "weak_share_of_spend": round(spend_weak / total, 4) if total else 0.0,
            "accuracy": round(self.accuracy, 4),
            "accuracy_spread": round(self.accuracy_spread, 4),
            "selection_accuracy": round(self.selection_accuracy, 4),
            "holdout_accuracy": round(self.holdout_accuracy, 4),
            "holdout_spread": round(self.holdout_spread, 4),
            "regime": self.regime,
            "recipe": self.recipe,
            "weak_labeler": self.weak_labeler,
            "n_test": min(self.n_test) if self.n_test else None,
            "interval": self.interval("test").as_dict(),
            "seeds": self.seeds,
            "seeds_failed": self.seeds_failed,
            "seeds_split": self.seeds_split,
            "trial_ids": self.trial_ids,
        }


def split(accuracies: list[float], learned: Iterable[bool | None], n_test: int) -> bool:
    """Whether seeds with these test accuracies (on the same n_test examples) and learned flags fall
    into groups: a seed that learned nothing beside one that learned, or a gap between neighbouring
    sorted accuracies over SPLIT_Z standard errors of the test sample (n_test 0: not judged)."""
    known = {flag for flag in learned if flag is not None}
    if known == {True, False}:
        return True
    if n_test <= 0:
        return False
    ordered = sorted(accuracies)
    return any(b - a > SPLIT_Z * math.sqrt((a * (1 - a) + b * (1 - b)) / n_test)
               for a, b in itertools.pairwise(ordered))


def _stdev(values: list[float]) -> float:
    """Sample standard deviation in floats (statistics.stdev's exact fractions were a fifth of a
    frontier's time); 0 with one value."""
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


RecipeKey = tuple[str, str, str, str, str]  # model, method, weak labeler, recipe, params digest

# A stored trial (db.models.Trial) or the same trial's columns (trial_records.TrialRecord).
TrialLike = Trial | TrialRecord


def recipe_key(trial: TrialLike) -> RecipeKey:
    """What a trial was trained with, apart from its label counts and seed."""
    return (trial.model, trial.method, trial.weak_labeler, trial.recipe or "", trial.params_key)


def point_recipe_key(point: PointStats) -> RecipeKey:
    """The recipe key of the trials a point pools (recipe_key)."""
    return (point.model, point.method, point.weak_labeler, point.recipe, point.params_key)


def _correct(trial: TrialLike) -> np.ndarray | None:
    """The trial's per-example correctness; None for trials stored before it was recorded."""
    if not trial.test_correct:
        return None
    return unpack_correct(trial.test_correct, trial.n_test)


def group_trials(trials: Iterable[TrialLike]) -> list[PointStats]:
    """Done trials grouped by everything but the seed (seeds pooled).

    Each point gets its recipe's seed-variance prior (intervals.seed_prior): it sharpens a
    few-seed point's own variance and stands in for a one-seed point's.
    """
    groups: dict[tuple, PointStats] = {}
    for t in trials:
        if t.status != "done" or t.test_accuracy is None:
            continue
        key = (*recipe_key(t), t.n_weak, t.n_gold)
        point = groups.setdefault(
            key, PointStats(t.method, t.n_weak, t.n_gold, t.model, t.recipe or "", t.weak_labeler,
                            params_key=t.params_key, recipe_label=t.recipe_label)
        )
        point.trial_ids.append(t.id)
        point.seeds.append(t.seed)
        point.selection.append(t.selection_accuracy)
        point.holdout.append(t.holdout_accuracy)
        point.test.append(t.test_accuracy)
        point.n_test.append(t.n_test or 0)
        point.correct.append(_correct(t))
        point.learned.append(t.learned)
    points = list(groups.values())
    lend_seed_variance(points)
    return points


def lend_seed_variance(points: Iterable[PointStats]) -> None:
    """Give each point its recipe's seed-variance prior (over the points of the same recipe key)."""
    by_recipe: dict[tuple, list[PointStats]] = {}
    for point in points:
        by_recipe.setdefault(point_recipe_key(point), []).append(point)
    for points in by_recipe.values():
        pooled = recipe_prior(points)
        for p in points:
            p.borrowed_seed_variance = pooled


def recipe_prior(points: Iterable[PointStats]) -> SeedVariance | None:
    """The seed-variance prior of one recipe's points (intervals.seed_prior)."""
    return seed_prior([SeedCount(p.k, p.seed_variance()) for p in points])


@dataclass(frozen=True, slots=True)
class SeedCount:
    """A point's seeds and their variance, read once: the prior asks each several times."""

    k: int
    variance: float | None

    def seed_variance(self) -> float | None:
        return self.variance
