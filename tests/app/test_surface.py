"""The learning surface against a known truth: noisy samples of a saturating accuracy curve.

Truth: acc = 0.5 + 0.4 (1 - exp(-n_gold/300)) + 0.1 (1 - exp(-n_weak/2000)), weak labels $0.10, gold $1.
The surface is fitted on budgets 16, 45, 128, 362, 1024 x weak shares 0..1 and checked at budgets
it never saw (32, 64, 256, 512), against brute force on the truth, and at its edges.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.stats.surface import (
    Observation,
    fit_surface,
    marginal_from_surface,
    plan,
    predicted_frontier,
)

WEAK_COST, GOLD_COST, NOISE_SD = 0.1, 1.0, 0.01
SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def truth(n_weak, n_gold):
    n_weak, n_gold = np.asarray(n_weak, float), np.asarray(n_gold, float)
    return 0.5 + 0.4 * (1 - np.exp(-n_gold / 300)) + 0.1 * (1 - np.exp(-n_weak / 2000))


def alloc(budget, share):
    return int(share * budget / WEAK_COST + 1e-9), int((1 - share) * budget / GOLD_COST + 1e-9)


def sample(budgets, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for b in budgets:
        for s in SHARES:
            w, g = alloc(b, s)
            acc = float(truth(w, g)) + shift + rng.normal(0, NOISE_SD)
            out.append(Observation(w, g, acc, NOISE_SD**2))
    return out


@pytest.fixture(scope="module")
def surface():
    return fit_surface(sample((16, 45, 128, 362, 1024)))


def test_refuses_fewer_than_four_points():
    with pytest.raises(ValueError, match=r"at least 4 .*3 given"):
        fit_surface(sample((16,))[:3])


def test_predicts_budgets_it_never_saw(surface):
    held = [alloc(b, s) for b in (32, 64, 256, 512) for s in SHARES]
    w, g = np.array(held).T
    mean, sd = surface.predict(w, g)
    err = mean - truth(w, g)
    assert mean.shape == sd.shape == (20,)
    assert np.abs(err).max() < 0.03 and np.abs(err).mean() < 0.01
    assert np.all(sd > 0) and np.all(sd < 0.03)
    # the 90% band of the mean should hold the truth at most of these points
    assert np.mean(np.abs(err) <= 1.645 * sd) >= 0.6
    assert surface.support(w, g).all()


def test_scalars_give_scalars_and_predictions_stay_in_range(surface):
    mean, sd = surface.predict(640, 64)
    assert mean.shape == sd.shape == () and 0.5 < float(mean) < 0.65
    mean, _ = surface.predict(np.array([0, 10**7]), np.array([0, 10**6]))
    assert np.all((mean >= 0) & (mean <= 1))


def test_loo_report(surface):
    loo = surface.loo
    assert loo["n_points"] == 25 and loo["model"] == surface.model
    assert set(loo["candidates"]) >= {"gp_rbf", "gp_matern52"}
    assert loo["rmse"] == min(loo["candidates"].values())
    # the noise is 0.01 per point: a held-out point can't be predicted much better, and shouldn't be worse
    assert 0.005 < loo["rmse"] < 0.025 and loo["mae"] <= loo["rmse"]
    assert 0.6 <= loo["coverage_90"] <= 1.0


def test_support_marks_extrapolation(surface):
    assert surface.support(0, 1024) and surface.support(2560, 0) and surface.support(1280, 128)
    assert not surface.support(0, 4)  # fewer gold labels than any measured run
    assert not surface.support(100_000, 0)  # ten times the weak labels ever bought
    assert not surface.support(10240, 1024)  # each axis was measured this far, but never both at once
    assert surface.support([0, 0], [1024, 5000]).tolist() == [True, False]


def test_plan_finds_the_cheapest_allocation_reaching_a_target(surface):
    target = 0.85
    answer = plan({"seq_sft": surface}, target, WEAK_COST, GOLD_COST, max_budget=1024)
    assert answer["method"] == "seq_sft" and answer["in_support"] is True
    assert answer["accuracy"] >= target and answer["low"] < target < answer["high"]
    assert 0.5 <= answer["probability"] < 1
    assert answer["cost"] == pytest.approx(answer["n_weak"] * WEAK_COST + answer["n_gold"] * GOLD_COST)
    # brute force on the truth over every split of every dollar amount up to the same max budget
    budgets = np.arange(16, 1025, 4.0)
    w, g = (np.floor(np.outer(budgets, s) / c + 1e-9) for s, c in
            ((np.linspace(0, 1, 101), WEAK_COST), (1 - np.linspace(0, 1, 101), GOLD_COST)))
    cost = w * WEAK_COST + g * GOLD_COST
    cheapest = cost[truth(w, g) >= target].min()
    assert abs(answer["cost"] - cheapest) <= 0.15 * cheapest
    assert truth(answer["n_weak"], answer["n_gold"]) >= target - 0.02


def test_plan_refuses_an_unreachable_target(surface):
    answer = plan({"seq_sft": surface}, 0.99, WEAK_COST, GOLD_COST, max_budget=4096)
    assert answer["method"] is None and answer["n_weak"] is None and answer["probability"] is None
    assert "does not reach" in answer["reason"]
    best = answer["best_in_support"]
    assert best["in_support"] and best["accuracy"] < 0.99 and best["cost"] <= 4096


def test_predicted_frontier_rises_with_budget_and_picks_the_better_method(surface):
    worse = fit_surface(sample((16, 128, 1024), shift=-0.08, seed=1))  # fewer points: faster
    budgets = [16, 32, 64, 128, 256, 512, 1024]
    rows = predicted_frontier({"good": surface, "worse": worse}, WEAK_COST, GOLD_COST, budgets)
    assert [r["budget"] for r in rows] == budgets
    assert all(r["method"] == "good" and r["in_support"] and r["predicted"] for r in rows)
    acc = np.array([r["accuracy"] for r in rows])
    assert np.all(np.diff(acc) > -0.005) and acc[-1] - acc[0] > 0.3
    assert all(r["low"] <= r["accuracy"] <= r["high"] and r["cost"] <= r["budget"] + 1e-9 for r in rows)
    # the truth at each chosen allocation is close to the truth's own best at that budget
    for r in rows:
        best = max(truth(*alloc(r["budget"], s)) for s in np.linspace(0, 1, 41))
        assert truth(r["n_weak"], r["n_gold"]) > best - 0.03


def test_predicted_frontier_never_falls_as_the_budget_grows():
    # Measured accuracy dips from $64 to $128 (as failed all-gold stages once made it): a larger budget
    # can still buy the $64 allocation, so its predicted best may not be lower.
    rng = np.random.default_rng(3)
    level = {16: 0.70, 64: 0.83, 128: 0.74, 256: 0.80}
    obs = [Observation(*alloc(b, s), level[b] + rng.normal(0, 0.005), 0.005**2) for b in level for s in SHARES]
    dipping = fit_surface(obs)
    budgets = [16, 64, 96, 128, 256]
    rows = predicted_frontier({"seq_sft": dipping}, WEAK_COST, GOLD_COST, budgets)
    acc = [r["accuracy"] for r in rows]
    assert all(b >= a for a, b in zip(acc, acc[1:])), acc
    at_128 = rows[budgets.index(128)]
    assert at_128["cost"] <= 96 + 1e-9  # it keeps to what $64-$96 bought, not the dip it could spend on
    assert all(r["cost"] <= r["budget"] + 1e-9 for r in rows)


def test_predicted_frontier_respects_the_pool_and_flags_extrapolation(surface):
    free = predicted_frontier({"seq_sft": surface}, WEAK_COST, GOLD_COST, [8, 256])
    rows = predicted_frontier({"seq_sft": surface}, WEAK_COST, GOLD_COST, [8, 256], pool_size=500)
    assert free[1]["n_weak"] + free[1]["n_gold"] > 500  # the cap binds at $256
    assert all(r["n_weak"] + r["n_gold"] <= 500 for r in rows)
    # $8 is half the cheapest measured budget: answered (nothing inside), but flagged
    assert rows[0]["in_support"] is False and rows[1]["in_support"] is True


def test_marginal_picks_gold_where_gold_helps_more(surface):
    # at 640 weak + 64 gold, $64 buys 64 gold (truth: +0.062) or 640 weak (truth: +0.020)
    m = marginal_from_surface(surface, 640, 64, WEAK_COST, GOLD_COST, step_dollars=64)
    assert m["better"] == "gold" and m["in_support"]
    assert m["gold"]["extra_labels"] == 64 and m["weak"]["extra_labels"] == 640
    assert m["gold"]["gain_per_dollar"] == pytest.approx(0.062 / 64, rel=0.3)
    assert m["weak"]["gain_per_dollar"] == pytest.approx(0.020 / 64, rel=0.5)
    assert m["difference"] < -1.645 * m["difference_sd"] < 0


def test_marginal_cannot_tell_on_a_flat_surface():
    # accuracy does not depend on labels at all; some points "exactly" known (variance 0 is floored)
    rng = np.random.default_rng(2)
    obs = [Observation(*alloc(b, s), 0.7 + rng.normal(0, 0.02), 0.0004 if s else 0.0)
           for b in (16, 128, 1024) for s in SHARES]
    flat = fit_surface(obs)
    m = marginal_from_surface(flat, 640, 64, WEAK_COST, GOLD_COST, step_dollars=64)
    assert m["better"] == "cannot tell"
    assert abs(m["difference"]) < 1.645 * m["difference_sd"]
    with pytest.raises(ValueError, match="buys 0 weak"):
        marginal_from_surface(flat, 640, 64, 100.0, GOLD_COST, step_dollars=64)


def test_many_points_are_fitted_and_held_out_evenly_within_bounds():
    # 60 budgets x 5 shares: 300 points; a fit's cost grows as their cube, so MAX_FIT_POINTS spread
    # evenly are fitted and MAX_LOO_POINTS held out. The surface still predicts what it was not fitted on.
    from app.stats.surface import MAX_FIT_POINTS, MAX_LOO_POINTS

    budgets = np.geomspace(16, 1024, 60)
    observed = sorted(sample(budgets, seed=1), key=lambda o: (o.n_weak, o.n_gold))
    fitted = fit_surface(observed)
    assert fitted.loo["n_measured"] == 300
    assert fitted.loo["n_points"] == len(fitted.observations) == MAX_FIT_POINTS
    assert fitted.loo["n_held_out"] == MAX_LOO_POINTS
    assert {(o.n_weak, o.n_gold) for o in observed[:1] + observed[-1:]} <= {(o.n_weak, o.n_gold) for o in fitted.observations}
    left_out = [o for o in observed if o not in fitted.observations]
    mean, _ = fitted.predict([o.n_weak for o in left_out], [o.n_gold for o in left_out])
    assert np.sqrt(np.mean((mean - np.array([o.accuracy for o in left_out])) ** 2)) < 0.03
