"""The search strategies the allocations' search was chosen against, replayed by bench.service.search
(docs/bench/search-replays.md). Not in the product: allocations run app.allocations.strategies'
ALLOCATION_SEARCH.

- `today`: the search before the surface: the corners and the middle of each method's shares (all
  gold, all weak, half and half), then Optuna's TPE over (method, share in 0.05 steps), snapped to
  the nearest candidate share; `today_stop`: the same with the surface's stop rule.
- `random`: candidates in a random order, then again.
- `grid`: coarse to fine: corners and middle, then quarters, then eighths, per method.
- `per_method`: the same opening, then per method a Gaussian process over the weak share fitted to
  that method's trials, asking where the expected improvement over the best measured mean is largest.
- `top_two`, `top_two_repeats`: the lean opening, then top-two Thompson sampling on the same surface
  (a best-arm identification rule), choosing the measured candidate with the highest surface mean;
  `top_two_repeats` may ask a measured candidate again for another seed. They stop when no
  candidate is likely to beat their choice by more than `margin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna

from app.allocations.search import FIRST_SHARES, SHARE_STEP
from app.allocations.strategies import (
    DRAWS,
    MARGIN,
    MIN_SURFACE_POINTS,
    STOP_PROBABILITY,
    Candidate,
    Strategy,
    SurfaceQuarterSearch,
    SurfaceSearch,
    joint_posterior,
    lean_opening,
    nearest,
    untried_stop_reason,
)


def opening(candidates: list[Candidate]) -> list[Candidate]:
    """All gold, all weak, then half and half, per method: the candidates nearest those shares."""
    out: list[Candidate] = []
    for share in FIRST_SHARES:
        for method in sorted({c.method for c in candidates}, key=[c.method for c in candidates].index):
            found = nearest(candidates, method, share)
            if found is not None and found not in out:
                out.append(found)
    return out


# top_two's own rule (the chance that any candidate beats its choice), as it was measured.
TOP_TWO_STOP_PROBABILITY = 0.05


class Ordered(Strategy):
    """Asks a fixed order of candidates, then starts again from its beginning (another seed each)."""

    def order(self) -> list[Candidate]:
        raise NotImplementedError

    def ask(self) -> Candidate | None:
        if not hasattr(self, "_order"):
            self._order = self.order()
        # Counted in asks, not trials: an ask may be measured on several seeds.
        self._asked = getattr(self, "_asked", -1) + 1
        return self._order[self._asked % len(self._order)]


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

    def __init__(self, candidates: list[Candidate], seed: int = 0, margin: float = MARGIN,
                 stop_probability: float = 0.0):
        super().__init__(candidates, seed)
        self.first = opening(self.candidates)
        self.margin, self.stop_probability = margin, stop_probability
        self.methods = sorted({c.method for c in self.candidates})
        self.study = optuna.create_study(direction="maximize")
        self._pending: optuna.Trial | None = None

    def ask(self) -> Candidate | None:
        if self.history.n_points < len(self.first):  # by points: an ask may be measured on several seeds
            return self.first[self.history.n_points]
        if self.stop_probability and self.history.n_points >= len(self.first) + MIN_SURFACE_POINTS:
            self.stop_reason = untried_stop_reason(self.history.results, self.candidates, self.margin,
                                                   self.stop_probability)
            if self.stop_reason:
                return None
        # Rebuilt as the study advances, as allocations did: the seed offset by the trials so far keeps
        # proposals reproducible without repeating one random draw.
        self.study.sampler = optuna.samplers.TPESampler(seed=self.seed + len(self.study.trials), n_startup_trials=4)
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
            # The table's shares need not lie on the sampler's steps (eighths do not): told at the nearest step.
            share = round(round(candidate.share / SHARE_STEP) * SHARE_STEP, 6)
            self.study.add_trial(optuna.trial.create_trial(
                params={"method": candidate.method, "weak_share": share},
                distributions={"method": optuna.distributions.CategoricalDistribution(self.methods),
                               "weak_share": optuna.distributions.FloatDistribution(0.0, 1.0, step=SHARE_STEP)},
                value=accuracy,
            ))


class PerMethodSurfaceSearch(SurfaceSearch):
    """The first surface search: today's opening (corners and middle of every method), then a
    Gaussian process per method, each learning only from its own trials."""

    name = "per_method"
    joint = False

    def opening(self) -> list[Candidate]:
        return opening(self.candidates)


@dataclass(frozen=True)
class Standing:
    """Where a search stands by joint draws of its surface: the choice (the measured candidate with the
    highest surface mean: one lucky seed moves it less than the best raw mean), each draw's best
    candidate, and the chance that some candidate beats the choice by more than the margin (the draws
    are correlated as the surface is, so neighbours are not counted twice)."""

    choice: Candidate
    chance_beaten: float
    candidates: list[Candidate]
    samples: np.ndarray  # draws x candidates, the joint draws behind chance_beaten

    def draw_leaders(self, allowed: list[Candidate]) -> list[Candidate]:
        """Each draw's best candidate among `allowed`, in draw order."""
        allowed_set = set(allowed)
        index = [i for i, c in enumerate(self.candidates) if c in allowed_set]
        return [self.candidates[index[j]] for j in self.samples[:, index].argmax(axis=1)]


def standing(results: dict[Candidate, list[float]], candidates: list[Candidate], margin: float,
             rng: np.random.Generator, draws: int = DRAWS) -> Standing | None:
    """None with fewer than two candidates measured (no surface to draw from)."""
    post = joint_posterior(results, candidates, cov=True)
    if post is None:
        return None
    measured = [i for i, c in enumerate(candidates) if results.get(c)]
    chosen = max(measured, key=lambda i: (post.mean[i], -i))
    samples = post.draws(draws, rng)
    beaten = float(np.mean(samples.max(axis=1) - samples[:, chosen] > margin))
    return Standing(candidates[chosen], beaten, candidates, samples)


def top_two(found: Standing, rng: np.random.Generator, beta: float, allowed: list[Candidate]) -> Candidate:
    """Top-two Thompson sampling (Russo 2016): the best candidate of one draw with probability `beta`,
    else the best of the first later draw that names another, a challenger. Built to identify the best
    arm rather than to score well along the way, which is what a search for one recommendation needs.
    Only `allowed` candidates compete (an allocation does not measure a point twice): each draw's
    best among them, so a draw led by a measured point still says which untried one it favours."""
    leaders = found.draw_leaders(allowed)
    leader = leaders[0]
    if rng.random() < beta:
        return leader
    return next((c for c in leaders[1:] if c != leader), leader)


class TopTwoSearch(Strategy):
    """The lean opening, then top-two Thompson sampling on one Gaussian process over (share, method);
    a candidate may be asked again for another seed (`repeats`). Its choice is the measured candidate
    with the highest surface mean. Stops when the chance that any candidate beats the choice by more
    than `margin` is below `stop_probability`."""

    name = "top_two"
    asks_again = False  # as an allocation: a point is measured once (on all its seeds) while another is left

    def __init__(self, candidates: list[Candidate], seed: int = 0, margin: float = MARGIN,
                 stop_probability: float = TOP_TWO_STOP_PROBABILITY, min_points: int | None = None, beta: float = 0.5,
                 repeats: bool | None = None):
        super().__init__(candidates, seed)
        self.first = lean_opening(self.candidates)
        self.margin, self.stop_probability, self.beta = margin, stop_probability, beta
        self.repeats = self.asks_again if repeats is None else repeats
        self.min_points = len(self.first) + MIN_SURFACE_POINTS if min_points is None else min_points
        self._standing: tuple[int, Standing | None] | None = None

    def standing(self) -> Standing | None:
        if self._standing is None or self._standing[0] != self.history.n_trials:
            self._standing = (self.history.n_trials,
                              standing(self.history.results, self.candidates, self.margin, self.rng))
        return self._standing[1]

    def ask(self) -> Candidate | None:
        if self.history.n_points < len(self.first):  # by points: an ask may be measured on several seeds
            return self.first[self.history.n_points]
        found = self.standing()
        if found is None:
            return next((c for c in self.candidates if c not in self.history.results), self.candidates[0])
        if self.history.n_points >= self.min_points and found.chance_beaten < self.stop_probability:
            self.stop_reason = (f"the chance that any candidate beats the choice by more than {self.margin:.3f} is "
                                f"{found.chance_beaten:.1%}, below {self.stop_probability:.0%}")
            return None
        untried = [c for c in self.candidates if c not in self.history.results]
        return top_two(found, self.rng, self.beta, self.candidates if self.repeats or not untried else untried)

    def choice(self) -> Candidate | None:
        found = self.standing() if len(self.history.results) >= 2 else None
        return found.choice if found is not None else self.history.best()


class CornersThenTPEWithStop(CornersThenTPE):
    """Today's search with the surface's stop rule: after its opening and two TPE points, it stops when
    no untried candidate is likely to beat the best measured mean by more than the margin."""

    name = "today_stop"

    def __init__(self, candidates: list[Candidate], seed: int = 0, margin: float = MARGIN,
                 stop_probability: float = STOP_PROBABILITY):
        super().__init__(candidates, seed, margin, stop_probability)


class TopTwoRepeatsSearch(TopTwoSearch):
    """Top-two sampling that may ask a measured candidate again, for another seed."""

    name = "top_two_repeats"
    asks_again = True


STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (CornersThenTPE, CornersThenTPEWithStop, RandomOrder, CoarseToFineGrid,
                        PerMethodSurfaceSearch, SurfaceSearch, SurfaceQuarterSearch, TopTwoSearch,
                        TopTwoRepeatsSearch)
}

