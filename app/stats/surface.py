"""A learning surface: accuracy predicted at any (n_weak, n_gold), with its uncertainty.

Stored trials measure accuracy only at the allocations someone paid to train, so a question about
any other budget or cost ratio would otherwise get "no trial there". One recipe's measured points
(mean accuracy over seeds, and the variance of that mean) are smoothed by a Gaussian process on
(log1p n_weak, log1p n_gold), each point weighted by its own variance, so the service can answer
between the measured points and say how sure it is. The band reported (`low`, `high`, `sd`) covers
the *mean* accuracy of the recipe at that allocation (90% unless a level is given), not the
accuracy of one new run, which also varies with the seed. A fitted extra-noise term (WhiteKernel)
soaks up scatter the stated variances do not explain: it is kept in the band, because measured
means wander around a smooth surface by more than their own noise (on cities the all-weak column
goes 0.610, 0.574, 0.660), and a band without it covered 15 of 20 held-out cities points instead
of 16 (`python -m bench.surface_report`). Two kernels are fitted (RBF and Matern 5/2) and the one with the lower leave-one-point-out
RMSE is kept; each held-out fit re-optimises its hyperparameters (starting from the full fit's), and
`Surface.loo` reports the chosen model's error, its 90% coverage and every candidate's RMSE.
Predictions outside the evidence (`Surface.support`: bracketed by measured points and inside their
convex hull in log space) are flagged: `plan` never answers from there, `predicted_frontier` only
for a budget with no allocation inside.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

from .prices import Prices

MIN_POINTS = 4
VARIANCE_FLOOR = 1e-6  # a point measured "exactly" must not pin the GP (and break its Cholesky)
SUPPORT_TOL = 0.1  # log1p units: about 10% more labels than measured still counts as evidence
Z90 = float(norm.ppf(0.95))
# Bounds on a fit's cost, which grows as points cubed (and LOO refits it once per held-out point):
# 600 points of one method took 55 s at 10k stored trials, and 2,400 would take hours; at these
# bounds, 3 s (tests/app/test_surface.py, 300 points). Beyond them, points spread evenly along
# (n_weak, n_gold) are fitted and held out; `loo` says how many.
MAX_FIT_POINTS = 100
MAX_LOO_POINTS = 20


def _evenly(n: int, most: int) -> np.ndarray:
    """Indices of at most `most` of n items, spread evenly from the first to the last."""
    return np.arange(n) if n <= most else np.unique(np.linspace(0, n - 1, most).round().astype(int))


@dataclass(frozen=True)
class Observation:
    """What the surface fits: label counts and an accuracy with its variance (the statistics import no
    domain value, so not a Point)."""

    n_weak: int
    n_gold: int
    accuracy: float
    variance: float  # squared standard error of `accuracy`


def _kernels() -> dict:
    # Length scales in log-label units: below 0.5 the surface could wiggle between neighbouring
    # grid points (a factor of 4 apart is log 4 = 1.4), which the data cannot support.
    def body(base):
        return ConstantKernel(0.01, (1e-4, 1.0)) * base + WhiteKernel(1e-4, (1e-8, 1e-2))

    scales = {"length_scale": [2.0, 2.0], "length_scale_bounds": (0.5, 100.0)}
    return {"gp_rbf": body(RBF(**scales)), "gp_matern52": body(Matern(nu=2.5, **scales))}


def _features(n_weak, n_gold) -> np.ndarray:
    w, g = np.broadcast_arrays(np.asarray(n_weak, float), np.asarray(n_gold, float))
    return np.column_stack([np.log1p(w.ravel()), np.log1p(g.ravel())])


def _fit_gp(kernel, X, y, var, restarts: int):
    # Centred by hand rather than normalize_y: sklearn would rescale y but not `alpha`, silently
    # mis-weighting the per-point variances.
    offset = float(y.mean())
    gp = GaussianProcessRegressor(kernel, alpha=var, n_restarts_optimizer=restarts, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a hyperparameter at its bound is fine
        gp.fit(X, y - offset)
    return gp, offset


def _latent(gp, offset, X, return_cov=False):
    """Posterior of the mean accuracy, with the misfit the WhiteKernel measured (see the docstring)."""
    if return_cov:
        mean, cov = gp.predict(X, return_cov=True)
        return mean + offset, cov
    mean, sd = gp.predict(X, return_std=True)
    return mean + offset, sd


def _loo(kernel, X, y, var) -> dict:
    errors, covered = [], []
    for i in _evenly(len(y), MAX_LOO_POINTS):
        keep = np.arange(len(y)) != i
        gp, offset = _fit_gp(kernel, X[keep], y[keep], var[keep], restarts=0)
        mean, sd = _latent(gp, offset, X[i : i + 1])
        err = y[i] - float(np.clip(mean[0], 0.0, 1.0))
        errors.append(err)
        covered.append(abs(err) <= Z90 * np.sqrt(sd[0] ** 2 + var[i]))
    e = np.array(errors)
    return {"rmse": float(np.sqrt(np.mean(e**2))), "mae": float(np.mean(np.abs(e))),
            "coverage_90": float(np.mean(covered)), "n_held_out": len(e)}


class Surface:
    """Predicted mean accuracy of one recipe over (n_weak, n_gold); build it with `fit_surface`."""

    def __init__(self, model: str, gp, offset: float, observations: list[Observation], loo: dict):
        self.model, self.loo, self.observations = model, loo, observations
        self._gp, self._offset = gp, offset
        self._X = _features([o.n_weak for o in observations], [o.n_gold for o in observations])
        try:
            self._hull = ConvexHull(self._X).equations
        except (QhullError, ValueError):
            self._hull = None  # points on a line (e.g. only all-gold runs): no hull, bracketing only

    def predict(self, n_weak, n_gold, return_cov: bool = False):
        """(mean, sd) of the mean accuracy, shaped like the broadcast inputs; (mean, cov) if asked."""
        shape = np.broadcast(np.asarray(n_weak), np.asarray(n_gold)).shape
        X = _features(n_weak, n_gold)
        if return_cov:
            mean, cov = _latent(self._gp, self._offset, X, return_cov=True)
            return np.clip(mean, 0.0, 1.0), cov
        mean, sd = _latent(self._gp, self._offset, X)
        return np.clip(mean, 0.0, 1.0).reshape(shape), sd.reshape(shape)

    def support(self, n_weak, n_gold) -> np.ndarray:
        """True where (n_weak, n_gold) lies among the measured points, not beyond them.

        Inside means bracketed (some measured run had at most as many weak and gold labels, some at
        least as many) and inside the convex hull, both in log space with SUPPORT_TOL. Bracketing is
        what rules out budgets below the smallest measured one: in log space the hull of a budget
        grid bulges past its cheapest budget line.
        """
        shape = np.broadcast(np.asarray(n_weak), np.asarray(n_gold)).shape
        X, M = _features(n_weak, n_gold)[:, None, :], self._X[None, :, :]
        inside = np.any(np.all(M <= X + SUPPORT_TOL, axis=2), axis=1)
        inside &= np.any(np.all(M >= X - SUPPORT_TOL, axis=2), axis=1)
        X = X[:, 0, :]
        if self._hull is not None:
            inside &= np.all(X @ self._hull[:, :2].T + self._hull[:, 2] <= SUPPORT_TOL, axis=1)
        return inside.reshape(shape)

    def __repr__(self) -> str:
        return f"Surface({self.model}, {len(self.observations)} points, LOO rmse {self.loo['rmse']:.4f})"


def fit_surface(observations: list[Observation]) -> Surface:
    """The surface over these observations (in (n_weak, n_gold) order; at most MAX_FIT_POINTS of them fitted)."""
    measured = list(observations)
    if len(measured) < MIN_POINTS:
        raise ValueError(f"a learning surface needs at least {MIN_POINTS} measured points; {len(measured)} given")
    obs = [measured[i] for i in _evenly(len(measured), MAX_FIT_POINTS)]
    X = _features([o.n_weak for o in obs], [o.n_gold for o in obs])
    y = np.array([o.accuracy for o in obs], float)
    var = np.maximum(np.array([o.variance for o in obs], float), VARIANCE_FLOOR)
    fits, scores = {}, {}
    for name, kernel in _kernels().items():
        gp, offset = _fit_gp(kernel, X, y, var, restarts=2)
        fits[name], scores[name] = (gp, offset), _loo(gp.kernel_, X, y, var)
    best = min(scores, key=lambda n: scores[n]["rmse"])
    loo = {"model": best, "n_points": len(obs), "n_measured": len(measured), **scores[best],
           "candidates": {n: s["rmse"] for n, s in scores.items()}}
    return Surface(best, *fits[best], obs, loo)


def _allocations(surfaces, budgets, weak_cost, gold_cost, pool_size, n_shares) -> dict:
    """Every (method, budget, weak share) allocation, as flat arrays with predictions."""
    share = np.linspace(0.0, 1.0, n_shares)
    b, s = (a.ravel() for a in np.meshgrid(np.asarray(budgets, float), share, indexing="ij"))
    n_weak = np.floor(s * b / weak_cost + 1e-9).astype(int)  # 1e-9: 0.25*256/0.1 must stay 640
    n_gold = np.floor((1 - s) * b / gold_cost + 1e-9).astype(int)
    if pool_size is not None:  # gold first, as the search space does
        n_gold = np.minimum(n_gold, pool_size)
        n_weak = np.minimum(n_weak, pool_size - n_gold)
    rows = {k: [] for k in ("method", "budget", "n_weak", "n_gold", "mean", "sd", "support")}
    for method, surface in surfaces.items():
        mean, sd = surface.predict(n_weak, n_gold)
        for k, v in (("method", [method] * len(b)), ("budget", b), ("n_weak", n_weak), ("n_gold", n_gold),
                     ("mean", mean), ("sd", sd), ("support", surface.support(n_weak, n_gold))):
            rows[k].append(np.asarray(v))
    out = {k: np.concatenate(v) for k, v in rows.items()}
    out["cost"] = Prices(weak_cost, gold_cost).cost(out["n_weak"], out["n_gold"])
    return out


def _row(rows, i, z) -> dict:
    mean, sd = float(rows["mean"][i]), float(rows["sd"][i])
    return {"method": str(rows["method"][i]), "n_weak": int(rows["n_weak"][i]),
            "n_gold": int(rows["n_gold"][i]), "cost": round(float(rows["cost"][i]), 6), "accuracy": mean,
            "low": max(0.0, mean - z * sd), "high": min(1.0, mean + z * sd),
            "in_support": bool(rows["support"][i])}


def predicted_frontier(surfaces: dict[str, Surface], weak_cost, gold_cost, budgets, pool_size=None,
                       n_shares=41) -> list[dict]:
    """Per budget, the best predicted allocation costing at most the budget; outside the evidence only
    when nothing is inside.

    A budget need not be spent: what a smaller budget buys, a larger one buys too. So each budget's
    candidates are the allocations of every smaller budget asked and of every measured point's own cost
    (where the surface is best known), not only those spending it all. Spending exactly the budget,
    the demo's $128 was predicted at 0.813 under its measured $64 point's 0.834 (issue 27): a surface
    whose whole-budget allocations dip, say where all-gold stages had failed, made money look harmful.
    """
    budgets = list(budgets)
    top = max((float(b) for b in budgets), default=0.0)
    prices = Prices(weak_cost, gold_cost)
    measured = {prices.cost(o.n_weak, o.n_gold) for s in surfaces.values() for o in s.observations}
    candidates = sorted({float(b) for b in budgets} | {c for c in measured if 0 < c <= top})
    rows = _allocations(surfaces, candidates, weak_cost, gold_cost, pool_size, n_shares)
    out = []
    for budget in budgets:
        here = np.flatnonzero(rows["cost"] <= float(budget) + 1e-9)
        inside = here[rows["support"][here]]
        pool = inside if len(inside) else here
        # The most accurate; the cheaper of equals.
        best = pool[np.lexsort((rows["cost"][pool], -rows["mean"][pool]))[0]]
        out.append({"budget": budget, **_row(rows, best, Z90), "predicted": True})
    return out


def plan(surfaces: dict[str, Surface], target_accuracy, weak_cost, gold_cost, max_budget, pool_size=None,
         level=0.9, confidence=0.8) -> dict:
    """The cheapest allocation inside the evidence with at least `confidence` probability of reaching
    the target (0.5: whose predicted mean reaches it), or why there is none."""
    z = float(norm.ppf(0.5 + level / 2))
    prices = Prices(weak_cost, gold_cost)
    costs = [prices.cost(o.n_weak, o.n_gold) for s in surfaces.values() for o in s.observations]
    low = min([c for c in costs if c > 0] or [max_budget])
    budgets = np.geomspace(min(low, max_budget), max_budget, 64)
    rows = _allocations(surfaces, budgets, weak_cost, gold_cost, pool_size, 41)
    none = dict.fromkeys(("method", "n_weak", "n_gold", "cost", "accuracy", "low", "high", "probability",
                          "in_support", "best_in_support"))
    answer = {"target": target_accuracy, "max_budget": max_budget, "level": level, "confidence": confidence, **none}
    # P(mean accuracy >= target) under each allocation's predictive normal.
    chance = norm.sf(target_accuracy, rows["mean"], np.maximum(rows["sd"], 1e-12))
    reach = chance >= confidence
    hits = np.flatnonzero(reach & rows["support"])
    if len(hits):
        # cheapest first; among equal costs the higher prediction
        i = hits[np.lexsort((-rows["mean"][hits], rows["cost"][hits]))[0]]
        sd = max(float(rows["sd"][i]), 1e-12)
        answer.update(_row(rows, i, z), probability=float(norm.sf(target_accuracy, rows["mean"][i], sd)),
                      reason=f"cheapest allocation within the evidence with at least a {confidence:.0%} chance "
                             f"of reaching {target_accuracy}")
        return answer
    inside = np.flatnonzero(rows["support"])
    if not len(inside):
        answer["reason"] = f"no allocation up to ${max_budget} lies within the measured points"
        return answer
    best = _row(rows, inside[np.argmax(rows["mean"][inside])], z)
    reason = (f"the evidence does not reach that far (with a {confidence:.0%} chance): within the measured "
              f"points the best predicted accuracy "
              f"is {best['accuracy']:.3f} ({best['method']}, {best['n_weak']} weak + {best['n_gold']} gold, "
              f"${best['cost']:.2f})")
    beyond = np.flatnonzero(reach)
    if len(beyond):
        cheapest = float(rows["cost"][beyond].min())
        reason += f"; only beyond them (from ${cheapest:.2f}) is it reached: extrapolation, not answered"
    answer.update(reason=reason, best_in_support=best)
    return answer


def marginal_from_surface(surface: Surface, n_weak, n_gold, weak_cost, gold_cost, step_dollars) -> dict:
    """Gain per dollar of `step_dollars` more weak vs more gold labels, from the joint posterior."""
    dw, dg = int(step_dollars / weak_cost + 1e-9), int(step_dollars / gold_cost + 1e-9)
    if dw < 1 or dg < 1:
        raise ValueError(f"${step_dollars} buys {dw} weak and {dg} gold labels; both must be at least 1")
    nw, ng = [n_weak, n_weak + dw, n_weak], [n_gold, n_gold, n_gold + dg]
    # Unclipped latent posterior: gains are differences, and the shared base error cancels in them.
    mean, cov = _latent(surface._gp, surface._offset, _features(nw, ng), return_cov=True)
    a_w = np.array([-1.0, 1.0, 0.0]) / (dw * weak_cost)  # per dollar actually spent
    a_g = np.array([-1.0, 0.0, 1.0]) / (dg * gold_cost)
    diff, sd_diff = float((a_w - a_g) @ mean), float(np.sqrt(max((a_w - a_g) @ cov @ (a_w - a_g), 0.0)))
    better = "cannot tell" if abs(diff) < Z90 * sd_diff else ("weak" if diff > 0 else "gold")

    def side(a, n, labels):
        return {"n_weak": nw[n], "n_gold": ng[n], "extra_labels": labels, "gain_per_dollar": float(a @ mean),
                "sd": float(np.sqrt(max(a @ cov @ a, 0.0)))}

    return {"n_weak": n_weak, "n_gold": n_gold, "step_dollars": step_dollars,
            "weak": side(a_w, 1, dw), "gold": side(a_g, 2, dg), "difference": diff, "difference_sd": sd_diff,
            "better": better, "in_support": bool(surface.support(nw, ng).all())}
