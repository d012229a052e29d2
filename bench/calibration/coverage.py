"""How often the stated intervals hold, measured on fresh seeds and unseen test examples.

Each point of a calibration grid is trained with several seeds and scored on the whole test set
(per-example correctness). One replicate splits the test examples at random into halves A and B
and the seeds into `k` "measured" seeds and the rest, "fresh". The interval is built as the
service builds it, from the measured seeds on A; it is then checked against what it claims to
predict, on data that played no part in it:

- **one run**: each fresh seed's accuracy on B must lie in the point's one-run range (widened for
  B's own finite size, since B is not the task's whole distribution);
- **expected accuracy**: the fresh seeds' mean on B estimates the same expected accuracy with its
  own noise, so the check is the interval of the difference of the two estimates (each with the
  stated standard error): it holds at the nominal level exactly when the standard errors are right;
- **the old "±"** (mean ± sd over seeds), checked like a one-run range, for comparison.

Each interval is moderated by the seed prior of the grid's points, as the service does; with
k = 1 the prior comes from the other points measured with two seeds.

`choice` measures the selection scheme: at each budget, choosing on one half of the test set and
reporting the other ("halves", the service's), choosing and reporting on all of it ("whole"), and
choosing on all but one seed and reporting the last ("seed_split"), all with the tie rule, scored
against fresh seeds on examples none of them saw.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from app.allocations.recommend import choose, simplicity
from app.results.points import PointStats
from app.stats.intervals import LEVEL, Scores, interval, satterthwaite, seed_prior, t_quantile
from app.stats.prices import Prices
from worker.engine.metrics import unpack_correct


class GridData:
    """Per point (method, n_weak, n_gold): seeds and their per-example correctness (seeds x examples)."""

    def __init__(self, results: list[dict]):
        rows: dict[tuple, dict[int, np.ndarray]] = defaultdict(dict)
        for r in results:
            spec = r["spec"]
            rows[(spec["method"], spec["n_weak"], spec["n_gold"])][spec["seed"]] = unpack_correct(
                r["test_correct"], r["n_test"]
            )
        self.points = sorted(rows)
        self.seeds = {p: sorted(rows[p]) for p in self.points}
        self.correct = {p: np.stack([rows[p][s] for s in self.seeds[p]]) for p in self.points}
        self.n_test = min(c.shape[1] for c in self.correct.values())

    def scores(self, point: tuple, seeds: np.ndarray, examples: np.ndarray) -> Scores:
        c = self.correct[point][np.ix_(seeds, examples)]
        return Scores(list(c.mean(axis=1)), len(examples), c)


def _within(diff: float, parts: list[tuple[float, float]], level: float) -> bool:
    se = math.sqrt(sum(v for v, _ in parts))
    return abs(diff) <= t_quantile(level, satterthwaite(parts)) * se + 1e-12


def coverage(data: GridData, k: int, reps: int = 200, level: float = LEVEL, seed: int = 0,
             moderate: bool = True) -> dict:
    """Coverage of the intervals built from k seeds, over random splits of examples and seeds.

    `moderate=False` builds each interval from its own seeds only (no recipe prior), for comparison.
    """
    rng = np.random.default_rng(seed)
    n = data.n_test
    hits: dict[str, list[bool]] = defaultdict(list)
    per_point: dict[tuple, list[bool]] = defaultdict(list)
    widths = []
    usable = [p for p in data.points if len(data.seeds[p]) > k]
    for _ in range(reps):
        order = rng.permutation(n)
        a, b = order[: n // 2], order[n // 2:]
        split = {p: rng.permutation(len(data.seeds[p])) for p in usable}
        measured = {p: data.scores(p, split[p][:k], a) for p in usable}
        # The service's seed prior, from every point's measured seeds (with one seed each, there is
        # nothing to fit: a one-seed point borrows from the other points measured twice).
        prior = seed_prior(list(measured.values()))
        lent = {p: seed_prior([data.scores(q, split[q][:2], a) for q in usable if q != p]) for p in usable}
        for p in usable:
            est = interval(measured[p], level, lent[p] if k == 1 else (prior if moderate else None))
            fresh = data.scores(p, split[p][k:], b)
            fresh_est = interval(fresh, level)
            ok = _within(est.estimate - fresh_est.estimate, [(est.se**2, est.df), (fresh_est.se**2, fresh_est.df)], level)
            hits["expected"].append(ok)
            per_point[p].append(ok)
            widths.append(est.half_width)
            sd = float(np.std(measured[p].accuracies, ddof=1)) if k > 1 else 0.0
            for acc in fresh.accuracies:
                b_noise = acc * (1 - acc) / len(b)
                hits["one_run"].append(_within(acc - est.estimate, [(est.run_se**2, est.run_df), (b_noise, len(b) - 1)], level))
                hits["old_plus_minus"].append(abs(acc - est.estimate) <= sd)
    return {
        "k": k,
        "moderated": moderate and k > 1,
        "level": level,
        "points": len(usable),
        "replicates": reps,
        "expected_coverage": float(np.mean(hits["expected"])),
        "one_run_coverage": float(np.mean(hits["one_run"])),
        "old_plus_minus_coverage": float(np.mean(hits["old_plus_minus"])),
        "median_half_width": float(np.median(widths)),
        "mean_half_width": float(np.mean(widths)),
        "per_point": {f"{p[0]} {p[1]}w+{p[2]}g": float(np.mean(v)) for p, v in per_point.items()},
    }


def _stats(point: tuple, scores: Scores) -> PointStats:
    method, n_weak, n_gold = point
    return PointStats(method, n_weak, n_gold, model="", test=list(scores.accuracies))


def choice(data: GridData, weak_cost: float, gold_cost: float, k: int = 3, reps: int = 200,
           level: float = LEVEL, seed: int = 1) -> dict:
    """The service's scheme (choose on one half, report the other) against choosing and reporting on all."""
    rng = np.random.default_rng(seed)
    n = data.n_test
    by_budget: dict[float, list[tuple]] = defaultdict(list)
    prices = Prices(weak_cost, gold_cost)
    for p in data.points:
        if len(data.seeds[p]) > k:
            by_budget[round(prices.cost(p[1], p[2]))].append(p)
    out = {scheme: defaultdict(list) for scheme in ("halves", "whole", "seed_split", "whole, any tie preferred")}
    for _ in range(reps):
        order = rng.permutation(n)
        seen, truth_examples = order[: n // 2], order[n // 2:]  # truth: examples neither scheme sees
        first, second = seen[: len(seen) // 2], seen[len(seen) // 2:]
        for points in by_budget.values():
            split = {p: rng.permutation(len(data.seeds[p])) for p in points}
            truth = {p: float(data.scores(p, split[p][k:], truth_examples).mean) for p in points}
            stats = {p: _stats(p, data.scores(p, split[p][:k], seen)) for p in points}
            # (examples to choose on, seeds to choose on, examples to report on, seeds to report on)
            schemes = {
                "halves": (first, slice(0, k), second, slice(0, k)),
                "whole": (seen, slice(0, k), seen, slice(0, k)),
                "seed_split": (seen, slice(0, k - 1), seen, slice(k - 1, k)),
            }
            for scheme, (pick_on, pick_seeds, report_on, report_seeds) in schemes.items():
                # Each side's seed prior from the data it uses, as the service fits it from its points.
                pick_prior = seed_prior([data.scores(q, split[q][pick_seeds], pick_on) for q in points])
                report_prior = (pick_prior if report_seeds.stop - report_seeds.start < 2 else
                                seed_prior([data.scores(q, split[q][report_seeds], report_on) for q in points]))
                for st in stats.values():
                    st.borrowed_seed_variance = pick_prior
                rec, best, ties, _ = choose(
                    list(stats.values()), weak_cost, gold_cost, level,
                    scores=lambda s, ex=pick_on, ss=pick_seeds: data.scores(_key(s), split[_key(s)][ss], ex))
                if scheme == "whole":
                    # The rule first tried: any point the best cannot be told from may replace it.
                    any_tie = _key(min([best, *ties], key=lambda q: (round(q.cost(prices), 6),
                                                                     simplicity(q))))
                    out["whole, any tie preferred"]["regret"].append(max(truth.values()) - truth[any_tie])
                p = _key(rec)
                est = interval(data.scores(p, split[p][report_seeds], report_on), level, report_prior)
                fresh = interval(data.scores(p, split[p][k:], truth_examples), level)
                out[scheme]["error"].append(est.estimate - truth[p])
                out[scheme]["regret"].append(max(truth.values()) - truth[p])
                out[scheme]["covered"].append(
                    _within(est.estimate - fresh.estimate, [(est.se**2, est.df), (fresh.se**2, fresh.df)], level))
                out[scheme]["half_width"].append(est.half_width)
    def summary(v: dict) -> dict:
        if not v["error"]:  # a choice rule only: its regret
            return {"bias": None, "rmse": None, "mean_regret": float(np.mean(v["regret"])), "coverage": None,
                    "median_half_width": None}
        return {
            "bias": float(np.mean(v["error"])),
            "rmse": float(np.sqrt(np.mean(np.square(v["error"])))),
            "mean_regret": float(np.mean(v["regret"])),
            "coverage": float(np.mean(v["covered"])),
            "median_half_width": float(np.median(v["half_width"])),
        }

    return {scheme: summary(v) for scheme, v in out.items()}


def _key(point: PointStats) -> tuple:
    return (point.method, point.n_weak, point.n_gold)

