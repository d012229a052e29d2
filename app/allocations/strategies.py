"""How an allocation chooses which point to try next at one budget, and when to stop trying.

A search at one budget picks among candidates (method x weak share); each trial of a candidate is one
seed's accuracy, noisy. A strategy is asked for the next candidate (`ask`), told what a trial
measured (`tell`), and may answer None: it has stopped (its stop rule says further trials are not
worth it; `stop_reason` says why).

- `surface`: a lean opening (the corners and the middle of the first method, the middle of the
  others), then one Gaussian process over (share, method) fitted to every trial, asking the untried
  candidate with the largest expected improvement.
- `surface_quarter`: the same search, its opening's mixed points at a quarter weak instead of half
  and half. The allocations' search (ALLOCATION_SEARCH, allocations.sampler).
The surface searches stop when, by joint draws of the surface, the best untried candidate is
unlikely (probability below `stop_probability`) to beat the best measured mean by more than `margin`.

The strategies they were chosen against (TPE, random, coarse-to-fine, per-method surfaces, top-two
sampling) are research, kept with the replay harness that measures them (bench/service/strategies.py,
bench/service/search.py), not in the product.

An ask may be measured on several seeds (an allocation measures a point on all of its seeds), so
openings and stop rules count points (candidates measured), not trials.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from app.allocations.search import FIRST_SHARES, SHARE_STEP
from worker.engine.spec import weak_stage_method

# The stop rule: a point of accuracy (what the replays count as finding the optimum), or one trial's
# scatter between seeds where that is larger (stop_margin); stop when an untried candidate is less
# likely than STOP_PROBABILITY to beat the best measured mean by more than that. Chosen by the replays
# (docs/bench/search-replays.md, "The stop rule").
MARGIN = 0.01
STOP_PROBABILITY = 0.2
# Points the surface itself chooses before it may stop: a surface fitted to the four or five opening
# points alone is sure of itself too soon (docs/bench/search-replays.md).
MIN_SURFACE_POINTS = 2
# Joint draws of the surface behind each top-two proposal and each stop-rule check.
DRAWS = 1000


@dataclass(frozen=True, order=True)
class Candidate:
    method: str
    share: float  # of the budget spent on weak labels


@dataclass
class History:
    """Trials so far, by candidate."""

    results: dict[Candidate, list[float]] = field(default_factory=lambda: defaultdict(list))
    order: list[Candidate] = field(default_factory=list)

    def add(self, candidate: Candidate, accuracy: float) -> None:
        self.results[candidate].append(accuracy)
        self.order.append(candidate)

    @property
    def n_trials(self) -> int:
        return len(self.order)

    @property
    def n_points(self) -> int:
        """Candidates measured (each on one or more seeds)."""
        return len(self.results)

    def means(self) -> dict[Candidate, float]:
        return {c: float(np.mean(v)) for c, v in self.results.items() if v}

    def best(self) -> Candidate | None:
        """The candidate with the highest measured mean (the first asked among equals)."""
        means = self.means()
        if not means:
            return None
        first = {c: i for i, c in reversed(list(enumerate(self.order)))}
        return max(means, key=lambda c: (means[c], -first[c]))



def lean_opening(candidates: list[Candidate], middle: float = 0.5) -> list[Candidate]:
    """All gold, all weak and half and half of the first method (the baseline), then half and half of
    each other method: a surface shared by the methods needs no more to place them, and with four
    methods it leaves a default `max_trials` of 8 two points to search with, where the corners of
    every method would fill all 8. `middle` moves the half-and-half points (SurfaceQuarterSearch)."""
    methods = list(dict.fromkeys(c.method for c in candidates))
    firsts = [middle if share == 0.5 else share for share in FIRST_SHARES]
    wanted = [(methods[0], share) for share in firsts] + [(m, middle) for m in methods[1:]]
    out: list[Candidate] = []
    for method, share in wanted:
        found = nearest(candidates, method, share)
        if found is not None and found not in out:
            out.append(found)
    return out


def nearest(candidates: list[Candidate], method: str, share: float) -> Candidate | None:
    """The method's candidate whose share is closest to `share` (the lower one on a tie)."""
    mine = [c for c in candidates if c.method == method]
    return min(mine, key=lambda c: (abs(c.share - share), c.share)) if mine else None


class Strategy:
    name = "base"

    def __init__(self, candidates: list[Candidate], seed: int = 0):
        if not candidates:
            raise ValueError("a search needs at least one candidate")
        self.candidates = list(candidates)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.history = History()
        self.stop_reason: str | None = None

    def ask(self) -> Candidate | None:
        raise NotImplementedError

    def tell(self, candidate: Candidate, accuracy: float) -> None:
        self.history.add(candidate, accuracy)

    def choice(self) -> Candidate | None:
        return self.history.best()








@dataclass(frozen=True)
class Posterior:
    mean: np.ndarray
    sd: np.ndarray
    cov: np.ndarray | None = None  # between the points asked about, when asked for (`joint_posterior(cov=True)`)

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n joint draws of the mean accuracy at every point (rows), correlated as the surface says."""
        root = np.linalg.cholesky(self.cov + 1e-10 * np.eye(len(self.mean)))
        return self.mean + rng.standard_normal((n, len(self.mean))) @ root.T


def _fit(x: np.ndarray, y: np.ndarray, kernel, at: np.ndarray, cov: bool = False) -> Posterior:
    """A Gaussian process fitted to (x, y), predicted at `at`: the mean accuracy there and its
    uncertainty (one trial's scatter, the fitted noise term, left out)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import WhiteKernel

    offset = float(y.mean())
    gp = GaussianProcessRegressor(kernel + WhiteKernel(1e-4, (1e-6, 1e-1)), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, y - offset)
    noise = float(gp.kernel_.k2.noise_level)
    if cov:
        mean, covariance = gp.predict(at, return_cov=True)
        covariance = covariance - noise * np.eye(len(at))
        sd = np.sqrt(np.maximum(np.diag(covariance), 1e-12))
        return Posterior(mean + offset, sd, covariance)
    mean, sd = gp.predict(at, return_std=True)
    return Posterior(mean + offset, np.sqrt(np.maximum(sd ** 2 - noise, 1e-12)))


def posterior(results: dict[Candidate, list[float]], method: str, shares: np.ndarray) -> Posterior | None:
    """A Gaussian process over the weak share fitted to every trial of one method, at `shares`.
    None with fewer than two shares measured."""
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern

    x, y = [], []
    for c, values in results.items():
        if c.method == method:
            x += [c.share] * len(values)
            y += values
    if len(set(x)) < 2:
        return None
    kernel = ConstantKernel(0.01, (1e-5, 1.0)) * Matern(0.3, (0.1, 10.0), nu=2.5)
    return _fit(np.array(x)[:, None], np.array(y), kernel, np.asarray(shares, float)[:, None])


def _features(candidates: list[Candidate], methods: list[str]) -> np.ndarray:
    """The share, then the method one-hot: methods far apart on their own axis learn little from
    each other, close ones share what either measured."""
    x = np.zeros((len(candidates), 1 + len(methods)))
    for i, c in enumerate(candidates):
        x[i, 0] = c.share
        x[i, 1 + methods.index(c.method)] = 1.0
    return x


def joint_posterior(results: dict[Candidate, list[float]], candidates: list[Candidate],
                    cov: bool = False) -> Posterior | None:
    """One Gaussian process over (share, method) fitted to every trial, at `candidates`. The method
    axes have length scales of their own: fitted long, what one method measured at a share speaks for
    the others there (the opening then needs one point per extra method, not three); fitted short,
    each method stands alone. None with fewer than two candidates measured."""
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern

    measured = [c for c, v in results.items() if v]
    if len(measured) < 2:
        return None
    methods = list(dict.fromkeys([c.method for c in candidates] + [c.method for c in measured]))
    trials = [c for c in measured for _ in results[c]]
    y = np.array([v for c in measured for v in results[c]])
    kernel = ConstantKernel(0.01, (1e-5, 1.0)) * Matern(
        [0.3] + [1.0] * len(methods), [(0.1, 10.0)] + [(0.3, 100.0)] * len(methods), nu=2.5)
    return _fit(_features(trials, methods), y, kernel, _features(candidates, methods), cov=cov)


@dataclass(frozen=True)
class Chances:
    """Per candidate, against the best measured mean: the expected improvement and the probability
    of beating it by more than the margin (by each method's surface)."""

    best: Candidate
    best_mean: float
    improvement: dict[Candidate, float]
    beat: dict[Candidate, float]


def chances(results: dict[Candidate, list[float]], candidates: list[Candidate], margin: float,
            joint: bool = True) -> Chances:
    """What each candidate might still gain over the best measured mean of `results`, by one surface
    over every method (`joint`) or one per method. Where too little is measured to fit, untried
    candidates are unknowns (certain to be worth a try)."""
    means = {c: float(np.mean(v)) for c, v in results.items() if v}
    best = max(means, key=means.get)
    best_mean = means[best]
    improvement, beat = {}, {}
    if joint:
        groups = [(candidates, joint_posterior(results, candidates))]
    else:
        groups = []
        for method in dict.fromkeys(c.method for c in candidates):
            mine = [c for c in candidates if c.method == method]
            groups.append((mine, posterior(results, method, np.array([c.share for c in mine]))))
    for group, post in groups:
        if post is None:
            for c in group:
                improvement[c], beat[c] = (0.0, 0.0) if c in means else (math.inf, 1.0)
            continue
        z = (post.mean - best_mean) / post.sd
        gain = (post.mean - best_mean) * norm.cdf(z) + post.sd * norm.pdf(z)
        over = norm.sf((best_mean + margin - post.mean) / post.sd)
        for c, e, p in zip(group, gain, over):
            improvement[c], beat[c] = float(e), float(p)
    return Chances(best, best_mean, improvement, beat)


@dataclass(frozen=True)
class UntriedChances:
    """By joint draws of the surface: the chance that the best of the untried candidates beats the
    best measured mean by more than the margin (`any`), and each untried candidate's own chance, from
    the same draws (so none exceeds `any`)."""

    best_mean: float
    any: float
    each: dict[Candidate, float]

    @property
    def likeliest(self) -> Candidate | None:
        return max(self.each, key=lambda c: (self.each[c], -c.share)) if self.each else None


def on_the_share_lattice(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates and, per method, every SHARE_STEP share between its lowest and highest: what an
    allocation can ask. A table's grid (eighths) is coarser; the stop rule reads both the same way."""
    out = list(candidates)
    present = set(candidates)
    for method in dict.fromkeys(c.method for c in candidates):
        shares = [c.share for c in candidates if c.method == method]
        for i in range(round(1 / SHARE_STEP) + 1):
            share = round(i * SHARE_STEP, 6)
            if min(shares) <= share <= max(shares) and Candidate(method, share) not in present:
                out.append(Candidate(method, share))
    return out


def untried_chances(results: dict[Candidate, list[float]], candidates: list[Candidate], margin: float,
                    draws: int = DRAWS) -> UntriedChances:
    """What the stop rule reads. Draws of the whole surface at once, not a product of each candidate's
    chance taken alone: neighbours move together, so the chance settles as the shares are cut finer
    where the product tends to 1. It is read on the share lattice an allocation asks
    (on_the_share_lattice), so a replay on a coarser table stops where an allocation would. Seeded:
    the same measurements give the same verdict."""
    untried = {c: None for c in candidates if c not in results}  # in order, and quick to look up
    means = [float(np.mean(v)) for v in results.values() if v]
    best_mean = max(means) if means else -math.inf
    if not untried:
        return UntriedChances(best_mean, 0.0, {})
    read = [c for c in on_the_share_lattice(candidates) if c not in results]
    post = joint_posterior(results, read, cov=True)
    if post is None:  # too little measured to fit: the untried are unknowns, certain to be worth a try
        return UntriedChances(best_mean, 1.0, {c: 1.0 for c in untried})
    over = post.draws(draws, np.random.default_rng(0)) > best_mean + margin
    return UntriedChances(best_mean, float(over.any(axis=1).mean()),
                          {c: float(p) for c, p in zip(read, over.mean(axis=0)) if c in untried})


def seed_scatter(results: dict[Candidate, list[float]]) -> float:
    """One trial's scatter between seeds: the pooled standard deviation of the candidates measured on
    two or more seeds; 0 when none is."""
    spreads = [np.var(v, ddof=1) for v in results.values() if len(v) > 1]
    return float(np.sqrt(np.mean(spreads))) if spreads else 0.0


def stop_margin(results: dict[Candidate, list[float]], margin: float) -> float:
    """What an untried candidate must beat the best by to matter to the stop rule: `margin`, or the
    noise where that is larger. A gain smaller than one trial's scatter is one that the allocation's
    own trials could not show, and asking for it made the rule run on to the cap (the replays)."""
    return max(margin, seed_scatter(results))


def untried_stop_reason(results: dict[Candidate, list[float]], candidates: list[Candidate], margin: float,
                        stop_probability: float) -> str | None:
    """Why to stop, or None: the surface's stop rule, whichever search asked the points."""
    needed = stop_margin(results, margin)
    found = untried_chances(results, candidates, needed)
    if found.any >= stop_probability:
        return None
    return (f"the chance that an untried candidate beats the best measured mean by more than {needed:.3f} is "
            f"{found.any:.1%}, below {stop_probability:.0%}")


def shares_a_weak_stage(candidate: Candidate, asked) -> bool:
    """Whether an asked candidate trains the same weak stage (same share of one budget, so the same
    n_weak; seq_sft and uncertainty_sft): its trials reuse that stage from the store, cheaper."""
    if candidate.share == 0:
        return False
    variant = weak_stage_method(candidate.method)
    return any(o != candidate and o.share == candidate.share and weak_stage_method(o.method) == variant
               for o in asked)


def propose(found: Chances, candidates: list[Candidate], asked: dict[Candidate, int]) -> Candidate:
    """The candidate to try next: the largest expected improvement among those not asked yet (an
    allocation measures a point once, on all its seeds); once all are asked, among all, the least
    asked first. Between equals, one whose weak stage is already trained, then the lowest share."""
    fresh = [c for c in candidates if c not in asked]
    return max(fresh or candidates, key=lambda c: (found.improvement[c], -asked.get(c, 0),
                                                   shares_a_weak_stage(c, asked), -c.share))


class SurfaceSearch(Strategy):
    """The lean opening, then the largest expected improvement on one Gaussian process over (share,
    method); stops when no untried candidate is likely to beat the best measured mean by more than
    `margin` or the seeds' scatter (untried_stop_reason). The allocations' search
    (app.allocations.sampler) is this with the quarter opening (SurfaceQuarterSearch), as an
    Optuna sampler."""

    name = "surface"
    joint = True
    middle = 0.5  # the share of the opening's mixed points (lean_opening)

    def __init__(self, candidates: list[Candidate], seed: int = 0, margin: float = MARGIN,
                 stop_probability: float = STOP_PROBABILITY, min_points: int | None = None):
        super().__init__(candidates, seed)
        self.first = self.opening()
        self.margin = margin
        self.stop_probability = stop_probability
        self.min_points = len(self.first) + MIN_SURFACE_POINTS if min_points is None else min_points

    def opening(self) -> list[Candidate]:
        return lean_opening(self.candidates, self.middle)

    def ask(self) -> Candidate | None:
        if self.history.n_points < len(self.first):  # by points: an ask may be measured on several seeds
            return self.first[self.history.n_points]
        found = chances(self.history.results, self.candidates, self.margin, joint=self.joint)
        if self.stop_probability and self.history.n_points >= self.min_points:
            self.stop_reason = untried_stop_reason(self.history.results, self.candidates, self.margin,
                                                   self.stop_probability)
            if self.stop_reason:
                return None
        return propose(found, self.candidates, {c: len(v) for c, v in self.history.results.items()})


class SurfaceQuarterSearch(SurfaceSearch):
    """The surface search opening at a quarter weak instead of half and half: the allocations' search
    (ALLOCATION_SEARCH). Learning curves in weak share tend to rise steeply from all gold, so a surface
    fitted to 0, 1/2 and 1 reads the low shares as lower than they are; a point at 1/4 sees the rise.
    Chosen on ten seeds of $256 and confirmed on more seeds of $16 and $64, grids it was not chosen on
    (docs/bench/search-replays.md)."""

    name = "surface_quarter"
    middle = 0.25












# What allocations run (app.allocations.sampler): the best measured in the replays.
ALLOCATION_SEARCH: type[SurfaceSearch] = SurfaceQuarterSearch

