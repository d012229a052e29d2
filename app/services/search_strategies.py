"""Ways to choose which allocation to try next at one budget, and when to stop trying.

A search at one budget picks among candidates (method x weak share); each trial of a candidate is one
seed's accuracy, noisy. A strategy is asked for the next candidate (`ask`), told what a trial
measured (`tell`), and may answer None: it has stopped (its stop rule says further trials are not
worth it; `stop_reason` says why). The replay harness (app.bench.search) runs them against a table
of real trials to measure how close each gets to the grid's optimum and how many trials it spends.

- `today`: what allocations do now: the corners and the middle of each method's shares (all gold,
  all weak, half and half), then Optuna's TPE over (method, share in 0.05 steps), snapped to the
  nearest candidate share.
- `random`: candidates in a random order, then again.
- `grid`: coarse to fine: corners and middle, then quarters, then eighths, per method.
- `surface`: the same opening, then per method a Gaussian process over the weak share fitted to
  every trial, asking where the expected improvement over the best measured mean is largest; it
  stops when no candidate is likely (probability below `stop_probability`) to beat that best by
  more than `margin`.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import optuna
from scipy.stats import norm

from .search import FIRST_SHARES, SHARE_STEP


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

    def means(self) -> dict[Candidate, float]:
        return {c: float(np.mean(v)) for c, v in self.results.items() if v}

    def best(self) -> Candidate | None:
        """The candidate with the highest measured mean (the first asked among equals)."""
        means = self.means()
        if not means:
            return None
        first = {c: i for i, c in reversed(list(enumerate(self.order)))}
        return max(means, key=lambda c: (means[c], -first[c]))


def opening(candidates: list[Candidate]) -> list[Candidate]:
    """All gold, all weak, then half and half, per method: the candidates nearest those shares."""
    out: list[Candidate] = []
    for share in FIRST_SHARES:
        for method in sorted({c.method for c in candidates}, key=[c.method for c in candidates].index):
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


class Ordered(Strategy):
    """Asks a fixed order of candidates, then starts again from its beginning (another seed each)."""

    def order(self) -> list[Candidate]:
        raise NotImplementedError

    def ask(self) -> Candidate | None:
        if not hasattr(self, "_order"):
            self._order = self.order()
        return self._order[self.history.n_trials % len(self._order)]


class RandomOrder(Ordered):
    name = "random"

    def order(self) -> list[Candidate]:
        return [self.candidates[i] for i in self.rng.permutation(len(self.candidates))]


class CoarseToFineGrid(Ordered):
    name = "grid"

    def order(self) -> list[Candidate]:
        out = opening(self.candidates)
        for step in (0.25, 0.125, 1 / 16, 1 / 32):
            for c in sorted(self.candidates, key=lambda c: (c.share, c.method)):
                on_step = math.isclose(c.share / step, round(c.share / step), abs_tol=1e-6)
                if on_step and c not in out:
                    out.append(c)
        return out + [c for c in self.candidates if c not in out]


class CornersThenTPE(Strategy):
    """Today's allocation search: the opening, then TPE (the sampler allocations build)."""

    name = "today"

    def __init__(self, candidates: list[Candidate], seed: int = 0):
        super().__init__(candidates, seed)
        self.first = opening(self.candidates)
        self.methods = sorted({c.method for c in self.candidates})
        self.study = optuna.create_study(direction="maximize")
        self._pending: optuna.Trial | None = None

    def ask(self) -> Candidate | None:
        if self.history.n_trials < len(self.first):
            return self.first[self.history.n_trials]
        from .search import sampler_for

        self.study.sampler = sampler_for(self.seed, len(self.study.trials))
        trial = self.study.ask()
        method = trial.suggest_categorical("method", self.methods)
        share = trial.suggest_float("weak_share", 0.0, 1.0, step=SHARE_STEP)
        self._pending = trial
        return nearest(self.candidates, method, share)

    def tell(self, candidate: Candidate, accuracy: float) -> None:
        super().tell(candidate, accuracy)
        if self._pending is not None:
            self.study.tell(self._pending, accuracy)
            self._pending = None
        else:  # an opening point, told as allocations enqueue them
            self.study.add_trial(optuna.trial.create_trial(
                params={"method": candidate.method, "weak_share": candidate.share},
                distributions={"method": optuna.distributions.CategoricalDistribution(self.methods),
                               "weak_share": optuna.distributions.FloatDistribution(0.0, 1.0, step=SHARE_STEP)},
                value=accuracy,
            ))


@dataclass(frozen=True)
class Posterior:
    mean: np.ndarray
    sd: np.ndarray


def posterior(results: dict[Candidate, list[float]], method: str, shares: np.ndarray) -> Posterior | None:
    """A Gaussian process over the weak share fitted to every trial of one method, at `shares`: the
    mean accuracy there and its uncertainty (one trial's scatter, the fitted noise term, left out).
    None with fewer than two shares measured."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    x, y = [], []
    for c, values in results.items():
        if c.method == method:
            x += [c.share] * len(values)
            y += values
    if len(set(x)) < 2:
        return None
    y = np.array(y)
    offset = float(y.mean())
    kernel = (ConstantKernel(0.01, (1e-5, 1.0)) * Matern(0.3, (0.1, 10.0), nu=2.5)
              + WhiteKernel(1e-4, (1e-6, 1e-1)))
    gp = GaussianProcessRegressor(kernel, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(np.array(x)[:, None], y - offset)
    noise = float(gp.kernel_.k2.noise_level)
    mean, sd = gp.predict(np.asarray(shares, float)[:, None], return_std=True)
    return Posterior(mean + offset, np.sqrt(np.maximum(sd ** 2 - noise, 1e-12)))


@dataclass(frozen=True)
class Chances:
    """Per candidate, against the best measured mean: the expected improvement and the probability
    of beating it by more than the margin (by each method's surface)."""

    best: Candidate
    best_mean: float
    improvement: dict[Candidate, float]
    beat: dict[Candidate, float]

    @property
    def likeliest(self) -> Candidate:
        return max(self.beat, key=lambda c: (self.beat[c], -c.share))


def chances(results: dict[Candidate, list[float]], candidates: list[Candidate], margin: float) -> Chances:
    """What each candidate might still gain over the best measured mean of `results`. A method with
    too little measured to fit treats its untried candidates as unknowns (certain to be worth a try)."""
    means = {c: float(np.mean(v)) for c, v in results.items() if v}
    best = max(means, key=means.get)
    best_mean = means[best]
    improvement, beat = {}, {}
    for method in dict.fromkeys(c.method for c in candidates):
        mine = [c for c in candidates if c.method == method]
        post = posterior(results, method, np.array([c.share for c in mine]))
        if post is None:
            for c in mine:
                improvement[c], beat[c] = (0.0, 0.0) if c in means else (math.inf, 1.0)
            continue
        z = (post.mean - best_mean) / post.sd
        gain = (post.mean - best_mean) * norm.cdf(z) + post.sd * norm.pdf(z)
        over = norm.sf((best_mean + margin - post.mean) / post.sd)
        for c, e, p in zip(mine, gain, over):
            improvement[c], beat[c] = float(e), float(p)
    return Chances(best, best_mean, improvement, beat)


class SurfaceSearch(Strategy):
    """The opening, then expected improvement on a per-method Gaussian process over the share;
    stops when no candidate is likely to beat the best measured mean by more than `margin`."""

    name = "surface"

    def __init__(self, candidates: list[Candidate], seed: int = 0, margin: float = 0.01,
                 stop_probability: float = 0.05, min_trials: int | None = None):
        super().__init__(candidates, seed)
        self.first = opening(self.candidates)
        self.margin = margin
        self.stop_probability = stop_probability
        self.min_trials = len(self.first) if min_trials is None else min_trials

    def ask(self) -> Candidate | None:
        if self.history.n_trials < len(self.first):
            return self.first[self.history.n_trials]
        found = chances(self.history.results, self.candidates, self.margin)
        top = found.beat[found.likeliest]
        if self.history.n_trials >= self.min_trials and top < self.stop_probability:
            self.stop_reason = (f"no candidate has a {self.stop_probability:.0%} chance of beating the best "
                                f"measured mean by more than {self.margin:.3f} (highest {top:.1%})")
            return None
        counts = {c: len(v) for c, v in self.history.results.items()}
        return max(self.candidates, key=lambda c: (found.improvement[c], -counts.get(c, 0), -c.share))


STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (CornersThenTPE, RandomOrder, CoarseToFineGrid, SurfaceSearch)
}
