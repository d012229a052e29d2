"""Intervals for a point's accuracy, and the paired comparison of two points.

A point is one allocation (method, n_weak, n_gold, recipe) trained with k seeds and scored on the
same n test examples. Its accuracy estimate, the mean over seeds and examples, has two sources of
noise, both of which the interval carries:

- **training seeds**: the seed draws the labels bought, their order and the initialisation. Its
  variance is the sample variance of the k per-seed accuracies over k (conditional on the test set,
  since every seed is scored on the same examples);
- **test examples**: the test set is a sample of the task. Its variance is the variance of each
  example's correctness (averaged over seeds) over n, so a hard example every seed misses counts once.

Both carry the seed-by-example term (how much seeds disagree on each example), so the example part
subtracts it once (`Scores.interaction_variance`): counted twice, it made the cities calibration
cover 0.95-0.96 at 90%. The interval uses a t quantile with Welch-Satterthwaite degrees of freedom, which are about k - 1 when
seeds dominate. It covers the **expected accuracy** of the allocation: the mean over training
seeds on the task's distribution of examples, at the stated level (`LEVEL`).

A few seeds measure their own spread poorly: with two, the variance rests on one degree of freedom,
and alone it covered 82-85% at 90% in simulation. So a point's seed variance is moderated by its
recipe's other points (empirical Bayes, `seed_prior`): a prior fitted to all their variances, worth
as many degrees of freedom as the points' agreement supports (few when an unstable all-gold point
sits beside steady mixes). On the word_sentiment calibration grid this kept coverage (two seeds
0.910 vs 0.907, three 0.907 vs 0.917) while the mean half-width fell from 0.119 to 0.063 (two
seeds) and 0.073 to 0.053 (three); docs/calibration has both grids. With one seed the seed term cannot be measured: the interval
borrows the recipe's pooled seed variance when there is one (and says so), or covers test examples
only (and says so).

`one_run` is the range for a single new training run (what a team gets when it buys these labels
once): seed variance counts once more for the run itself.

Two points are compared on the same examples (paired): the difference of their per-example mean
correctness carries the example noise once, without the between-example spread the two share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy import optimize, special

LEVEL = 0.90


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    level: float
    se: float
    df: float
    n_seeds: int
    n_test: int
    seed_sd: float | None  # None: not measured and not borrowed
    one_run_low: float
    one_run_high: float
    covers: tuple[str, ...]
    note: str | None = None
    run_se: float = 0.0  # standard error behind one_run_low/high
    run_df: float = math.inf

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low - 1e-12 <= value <= self.high + 1e-12

    def as_dict(self, digits: int = 4) -> dict:
        r = lambda x: None if x is None else round(float(x), digits)  # noqa: E731
        return {
            "estimate": r(self.estimate),
            "low": r(self.low),
            "high": r(self.high),
            "level": self.level,
            "se": r(self.se),
            "df": None if math.isinf(self.df) else round(self.df, 1),
            "n_seeds": self.n_seeds,
            "n_test": self.n_test,
            "seed_sd": r(self.seed_sd),
            "one_run_low": r(self.one_run_low),
            "one_run_high": r(self.one_run_high),
            "covers": list(self.covers),
            "note": self.note,
        }


@dataclass(frozen=True)
class SeedVariance:
    """What a recipe's points say about seed variance: a prior worth `df` seeds' degrees of freedom.

    `moderates`: the prior was fitted (empirical Bayes, `seed_prior`) and may sharpen a point's own
    few-seed estimate; otherwise it is a plain pooled variance, lent only to one-seed points.
    """

    variance: float
    df: float
    n_points: int
    moderates: bool = False
    # What a one-seed point borrows: the plain pool (mean variance, summed df). The fitted prior's
    # scale sits below the mean variance when points differ, and lent instead it covered a one-seed
    # point 0.881 (expected accuracy) and 0.837 (one run) on the word_sentiment calibration grid,
    # against 0.925 and 0.895 for the pool.
    lend: tuple[float, float] | None = None


@dataclass(frozen=True)
class StoredVariances:
    """A point's seed and example variances as Scores computed them from its trials, kept with its
    aggregate (trials.aggregates) so that reading it needs no per-example records."""

    seed: float | None
    example: float


@dataclass
class Scores:
    """Per-seed accuracies and, when the trials recorded them, per-example correctness (k x n)."""

    accuracies: list[float]
    n_test: int
    correct: np.ndarray | None = field(default=None)
    stored: StoredVariances | None = None

    @property
    def k(self) -> int:
        return len(self.accuracies)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    def seed_variance(self) -> float | None:
        if self.stored is not None:
            return self.stored.seed
        return float(np.var(self.accuracies, ddof=1)) if self.k > 1 else None

    def variances(self) -> StoredVariances:
        return StoredVariances(self.seed_variance(), self.example_variance())

    def interaction_variance(self, n: int | None = None) -> float:
        """How much seeds disagree example by example (the seed-by-example term), per example.

        Both the seed variance and the per-example variance carry this term over k * n; summed as
        they are, it would count twice, so the example part subtracts it once.
        """
        if self.correct is None or self.k < 2:
            return 0.0
        return float(np.mean(np.var(self.correct[:, :n], axis=0, ddof=1)))

    def example_variance(self) -> float:
        """Variance of the mean accuracy from the finite test set (net of the seed-by-example term)."""
        if self.stored is not None:
            return self.stored.example
        n = max(self.n_test, 1)
        if self.correct is not None and n > 1:
            raw = float(np.var(self.correct.mean(axis=0), ddof=1)) / n
            # Floored at half: the correction must not leave the test set's own noise near nothing.
            variance = max(raw - self.interaction_variance() / (self.k * n), raw / 2)
        else:
            p = self.mean  # no per-example record: binomial, an upper bound for k > 1
            variance = p * (1 - p) / n
        if variance > 0:
            return variance
        # Every example right (or wrong) is not certainty: Agresti-Coull's adjusted rate keeps a width.
        adjusted = (self.mean * n + 2) / (n + 4)
        return adjusted * (1 - adjusted) / (n + 4)


class SeedScored(Protocol):
    """What the recipe-level priors read of a point: Scores, or a points.PointStats read from its aggregate."""

    @property
    def k(self) -> int: ...

    def seed_variance(self) -> float | None: ...


def stack_records(records: list[np.ndarray | None], n_tests: list[int | None]) -> np.ndarray | None:
    """The seeds' correctness as one (seeds x examples) matrix, when every seed recorded it on the
    same number of examples; None otherwise (the intervals then fall back to binomial)."""
    if not records or any(r is None for r in records) or len(set(n_tests)) != 1:
        return None
    return np.stack(records)


def pooled_seed_variance(points: Sequence[SeedScored]) -> SeedVariance | None:
    """The seed variance of several points pooled (weighted by their degrees of freedom)."""
    measured = [(p.seed_variance(), p.k - 1) for p in points if p.k > 1]
    if not measured:
        return None
    df = sum(d for _, d in measured)
    return SeedVariance(sum(v * d for v, d in measured) / df, df, len(measured))


MAX_PRIOR_DF = 100.0


def _trigamma_inverse(y: float) -> float:
    return float(optimize.brentq(lambda x: special.polygamma(1, x) - y, 1e-8, 1e8))


def seed_prior(points: Sequence[SeedScored]) -> SeedVariance | None:
    """The recipe's seed variance as an empirical-Bayes prior (Smyth 2004, limma's fitFDist).

    Each point's sample variance is a scaled chi-square draw around its own true variance; how much
    more the log variances scatter than chi-square sampling explains says how much the true
    variances differ between points, hence how many degrees of freedom the prior is worth. Points
    alike in stability give a strong prior, unlike ones (an unstable all-gold point beside steady
    mixes) a weak one. Falls back to the plain pool below three points.
    """
    measured = [(p.seed_variance(), p.k - 1) for p in points if p.k > 1]
    measured = [(v, d) for v, d in measured if v > 0]
    pooled = pooled_seed_variance(points)
    if len(measured) < 3:
        return pooled
    v, d = np.array([m[0] for m in measured]), np.array([m[1] for m in measured], float)
    e = np.log(v) - special.digamma(d / 2) + np.log(d / 2)
    n = len(e)
    excess = float(np.mean((e - e.mean()) ** 2) * n / (n - 1) - np.mean(special.polygamma(1, d / 2)))
    if excess > 0:
        prior_df = min(2 * _trigamma_inverse(excess), MAX_PRIOR_DF)
    else:
        prior_df = MAX_PRIOR_DF
    variance = float(np.exp(e.mean() + special.digamma(prior_df / 2) - np.log(prior_df / 2)))
    return SeedVariance(variance, prior_df, n, moderates=True, lend=(pooled.variance, pooled.df))


def satterthwaite(parts: list[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of variance estimates, each given as (variance, its df)."""
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / d for v, d in parts if v > 0 and math.isfinite(d))
    return total * total / denominator if denominator > 0 else math.inf


def t_quantile(level: float, df: float) -> float:
    """The two-sided quantile of Student's t (normal when df is infinite).

    The special functions stats.t.ppf and stats.norm.ppf call, without their argument checking: a
    frontier takes two per point, and the checks were a third of its time.
    """
    p = 0.5 + level / 2
    return float(special.stdtrit(df, p)) if math.isfinite(df) else float(special.ndtri(p))


def _clip(x: float) -> float:
    return min(max(x, 0.0), 1.0)


def seed_term(scores: Scores, borrowed: SeedVariance | None) -> tuple[float, float] | None:
    """(seed variance, its degrees of freedom) for one point: its own, moderated or borrowed; None: unknown."""
    own, own_df = scores.seed_variance(), scores.k - 1
    if own is not None and borrowed is not None and borrowed.moderates:
        # The point's own few-seed variance, sharpened by what its recipe's other points measured.
        return (borrowed.df * borrowed.variance + own_df * own) / (borrowed.df + own_df), borrowed.df + own_df
    if own is not None:
        return own, own_df
    if borrowed is not None:
        return borrowed.lend or (borrowed.variance, borrowed.df)
    return None


def interval(scores: Scores, level: float = LEVEL, borrowed: SeedVariance | None = None) -> Interval:
    """The interval for the expected accuracy of one point (see the module docstring)."""
    example_var = scores.example_variance()
    term = seed_term(scores, borrowed)
    seed_var, seed_df = term if term else (None, 0)
    covers, note = ["test examples"], None
    if scores.k > 1:
        covers.append("training seeds")
        if borrowed is not None and borrowed.moderates:
            pass  # a fitted prior holds the level with few seeds (module docstring)
        elif scores.k == 2:
            # Measured by simulation (tests/app/test_intervals.py): 82-85% at a 90% level with two seeds
            # and nothing to moderate them, lowest where seeds vary most.
            note = ("two seeds: their spread rests on a single difference, so this interval can cover less than "
                    f"its {level:.0%} (about 82-85% in simulation); more seeds, or other points of its recipe "
                    "to moderate them, hold the level")
    elif term is not None:
        covers.append("training seeds (borrowed)")
        note = (f"one seed: its seed-to-seed spread is borrowed from {borrowed.n_points} other point(s) "
                "of this recipe; run more seeds to measure it")
    else:
        note = "one seed: seed-to-seed variance is not measured, so this interval covers the test set only"
    parts = [(example_var, max(scores.n_test - 1, 1))]
    run_parts = list(parts)
    if seed_var is not None:
        parts.append((seed_var / scores.k, seed_df))
        run_parts.append((seed_var * (1 + 1 / scores.k), seed_df))
    se = math.sqrt(sum(v for v, _ in parts))
    df = satterthwaite(parts)
    t = t_quantile(level, df)
    run_df = satterthwaite(run_parts)
    run_t = t_quantile(level, run_df)
    run_se = math.sqrt(sum(v for v, _ in run_parts))
    mean = scores.mean
    return Interval(
        estimate=mean,
        low=_clip(mean - t * se),
        high=_clip(mean + t * se),
        level=level,
        se=se,
        df=df,
        n_seeds=scores.k,
        n_test=scores.n_test,
        seed_sd=math.sqrt(seed_var) if seed_var is not None else None,
        one_run_low=_clip(mean - run_t * run_se),
        one_run_high=_clip(mean + run_t * run_se),
        covers=tuple(covers),
        note=note,
        run_se=run_se,
        run_df=run_df,
    )


@dataclass(frozen=True)
class Comparison:
    """`a` minus `b` on the same test examples."""

    difference: float
    low: float
    high: float
    level: float
    paired: bool

    @property
    def tie(self) -> bool:
        """The interval of the difference holds zero: the data cannot tell the two apart."""
        return self.low <= 0.0 <= self.high

    def as_dict(self) -> dict:
        return {
            "difference": round(self.difference, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "level": self.level,
            "paired": self.paired,
            "tie": self.tie,
        }


def compare(a: Scores, b: Scores, level: float = LEVEL, borrowed: SeedVariance | None = None) -> Comparison:
    """The difference of two points' accuracies with its interval, paired over test examples.

    Pairs when both recorded per-example correctness on the same examples (their common prefix);
    otherwise each point's own example variance counts, as for independent test sets.
    """
    parts = []
    paired = a.correct is not None and b.correct is not None
    if paired:
        n = min(a.correct.shape[1], b.correct.shape[1])
        d = a.correct[:, :n].mean(axis=0) - b.correct[:, :n].mean(axis=0)
        raw = float(np.var(d, ddof=1)) / n if n > 1 else 0.0
        twice = (a.interaction_variance(n) / a.k + b.interaction_variance(n) / b.k) / n  # as in example_variance
        parts.append((max(raw - twice, raw / 2), max(n - 1, 1)))
    else:
        parts += [(a.example_variance(), max(a.n_test - 1, 1)), (b.example_variance(), max(b.n_test - 1, 1))]
    for s in (a, b):
        term = seed_term(s, borrowed)
        if term is not None:
            parts.append((term[0] / s.k, term[1]))
    diff = a.mean - b.mean
    se = math.sqrt(sum(v for v, _ in parts))
    t = t_quantile(level, satterthwaite(parts))
    return Comparison(diff, diff - t * se, diff + t * se, level, paired)


def beats_chance(interval_: Interval, majority_rate: float) -> bool:
    """The interval lies above the accuracy of always answering the majority class."""
    return interval_.low > majority_rate
