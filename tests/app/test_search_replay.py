"""The search replay harness (bench.service.search) and the strategies it measures
(app.allocations.strategies), on small tables whose optimum is known."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from app.allocations.strategies import Candidate, SurfaceSearch, lean_opening
from bench.service.strategies import (
    STRATEGIES,
    CornersThenTPE,
    CornersThenTPEWithStop,
    Standing,
    TopTwoRepeatsSearch,
    TopTwoSearch,
    top_two,
)
from bench.service import search as bench

SHARES = [i / 8 for i in range(9)]
METHODS = ["seq_sft", "logconf_sft"]


def write_table(path, accuracy, budgets=(16.0, 64.0), seeds=3, noise=0.004) -> None:
    """One row per trial; `accuracy(method, share, budget)` is the point's true mean."""
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["task", "model", "recipe", "method", "budget", "weak_share", "n_weak", "n_gold", "seed",
                      "test_accuracy"])
        for budget in budgets:
            for method in METHODS:
                for share in SHARES:
                    errors = rng.normal(0, noise, seeds)
                    errors -= errors.mean()  # the true mean is exactly accuracy(...)
                    for seed, e in enumerate(errors):
                        out.writerow(["toy", "m", "fast", method, budget, share, int(share * budget * 10),
                                      int((1 - share) * budget), seed, accuracy(method, share, budget) + e])


def peaked(method: str, share: float, budget: float) -> float:
    """A mix is best: seq_sft peaks at 3/8 weak (0.80), logconf_sft 2 points lower."""
    return 0.80 - 0.5 * (share - 0.375) ** 2 - (0.02 if method == "logconf_sft" else 0.0)


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "table.csv"
    write_table(path, peaked)
    return path


def test_the_table_reads_as_grids_with_their_known_optimum(table):
    grids = bench.read_table(table)
    assert [(g.task, g.budget) for g in grids] == [("toy", 16.0), ("toy", 64.0)]
    grid = grids[0]
    assert len(grid.candidates) == 18 and grid.n_trials == 54
    best = max(grid.candidates, key=grid.truth)
    assert best == Candidate("seq_sft", 0.375) and grid.optimum == pytest.approx(0.80)


def test_every_strategy_asks_candidates_of_the_grid_and_the_full_grid_finds_the_optimum(table):
    grid = bench.read_table(table)[0]
    for name in STRATEGIES:
        result = bench.measure(grid, name, replays=3, cap=12, within=0.01)
        assert len(result["mean_regret"]) == 12 and all(r >= 0 for r in result["mean_regret"])
    full = bench.measure(grid, "grid", replays=5, cap=grid.n_trials, within=0.01)
    assert full["final_regret"] == pytest.approx(0.0, abs=1e-9) and full["final_within"] == 1.0


def test_today_opens_with_the_corners_and_the_middle_then_asks_tpe(table):
    grid = bench.read_table(table)[0]
    strategy = CornersThenTPE(grid.candidates, seed=0)
    asked = []
    for _ in range(8):
        candidate = strategy.ask()
        asked.append(candidate)
        strategy.tell(candidate, grid.truth(candidate))
    assert asked[:6] == [Candidate(m, s) for s in (0.0, 1.0, 0.5) for m in METHODS]
    assert all(c in grid.seeds for c in asked[6:])


@pytest.mark.parametrize("name", ["surface", "top_two", "top_two_repeats"])
def test_a_surface_search_finds_a_smooth_optimum_with_a_quarter_of_the_grid(table, name):
    grid = bench.read_table(table)[0]
    result = bench.measure(grid, name, replays=10, cap=grid.n_trials // 4, within=0.01, stop_probability=0.0)
    assert result["final_within"] >= 0.9


@pytest.mark.parametrize(("strategy_class", "reason"), [
    (SurfaceSearch, "chance that an untried candidate beats the best"),
    (CornersThenTPEWithStop, "chance that an untried candidate beats the best"),
    (TopTwoSearch, "chance that any candidate beats the choice"),
])
def test_the_stop_rule_stops_on_a_flat_grid_after_its_opening_and_two_points(tmp_path, strategy_class, reason):
    path = tmp_path / "flat.csv"
    write_table(path, lambda method, share, budget: 0.7, budgets=(16.0,))
    grid = bench.read_table(path)[0]
    strategy = strategy_class(grid.candidates, seed=0)
    run = bench.replay(grid, strategy, cap=grid.n_trials, rng=np.random.default_rng(0))
    assert run.stopped and run.used < grid.n_trials // 2
    assert len(strategy.first) + 2 <= strategy.history.n_points < len(grid.candidates)
    assert reason in strategy.stop_reason


def test_the_stop_rule_keeps_asking_while_a_peak_is_unmeasured(table):
    grid = bench.read_table(table)[0]
    strategy = SurfaceSearch(grid.candidates, seed=0)
    run = bench.replay(grid, strategy, cap=grid.n_trials, rng=np.random.default_rng(0))
    # It stops (or not) only once it has measured near the peak at 3/8.
    assert strategy.history.best().method == "seq_sft" and abs(strategy.history.best().share - 0.375) <= 0.125
    assert run.used > len(grid.candidates) // 3


def test_top_two_chooses_by_the_surface_not_by_one_lucky_seed(table):
    """A candidate far from the peak measured once, luckily high, is not the choice: its surface mean,
    pulled to its neighbours, is below the peak's."""
    grid = bench.read_table(table)[0]
    strategy = TopTwoRepeatsSearch(grid.candidates, seed=0)
    for share in (0.25, 0.375, 0.5, 0.875, 1.0):
        for error in (-0.02, 0.0, 0.02):  # seeds scatter by two points, as the real tables' do
            strategy.tell(Candidate("seq_sft", share), peaked("seq_sft", share, 16.0) + error)
    lucky = Candidate("seq_sft", 0.75)
    strategy.tell(lucky, peaked("seq_sft", 0.375, 16.0) + 0.003)
    assert strategy.history.best() == lucky
    assert strategy.choice() == Candidate("seq_sft", 0.375)


def test_an_ask_measured_on_several_seeds_gives_distinct_seeds_and_keeps_the_opening(table):
    grid = bench.read_table(table)[0]
    strategy = SurfaceSearch(grid.candidates, seed=0)
    bench.replay(grid, strategy, cap=16, rng=np.random.default_rng(0), seeds_per_ask=2)
    opening = lean_opening(grid.candidates)
    assert strategy.history.order[: 2 * len(opening):2] == opening
    assert all(len(set(v)) == len(v) == 2 for v in strategy.history.results.values())
    grid_order = STRATEGIES["grid"](grid.candidates, seed=0)
    bench.replay(grid, grid_order, cap=2 * len(grid.candidates), rng=np.random.default_rng(0), seeds_per_ask=2)
    assert set(grid_order.history.results) == set(grid.candidates)  # every candidate once, on two seeds


def test_the_command_writes_its_numbers_and_curves(table, tmp_path):
    out, png = tmp_path / "replays.json", tmp_path / "regret.png"
    result = CliRunner().invoke(bench.app, ["replay", "--table", str(table), "--replays", "3",
                                            "--json", str(out), "--png", str(png)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert {r["strategy"] for r in rows} >= {"today", "random", "grid", "surface", "surface(stop_probability=0.0)",
                                            "top_two", "top_two(stop_probability=0.0)", "whole grid x3"}
    whole = [r for r in rows if r["strategy"] == "whole grid x3"]
    assert all(r["cap"] == 54 and r["final_within"] == 1.0 for r in whole)  # every seed of every candidate
    assert png.stat().st_size > 10_000
    bad = CliRunner().invoke(bench.app, ["replay", "--table", str(table), "--strategies", "nope"])
    assert bad.exit_code == 2 and "unknown strategies" in bad.output
    # One budget, its cap a quarter of a one-seed grid (18 candidates) although the table holds three.
    one = CliRunner().invoke(bench.app, ["replay", "--table", str(table), "--budgets", "16", "--grid-seeds", "1",
                                         "--strategies", "grid", "--replays", "2", "--references", "0", "--json", str(out)])
    assert one.exit_code == 0, one.output
    assert [(r["budget"], r["cap"]) for r in json.loads(out.read_text())] == [(16.0, 4)]
    assert CliRunner().invoke(bench.app, ["replay", "--table", str(table), "--budgets", "x"]).exit_code == 2


def test_replays_can_keep_only_some_seeds(table):
    (full,) = [g for g in bench.read_table(table) if g.budget == 16]
    (first_two,) = [g for g in bench.read_table(table, only_seeds=bench.parse_seeds("0-1")) if g.budget == 16]
    assert full.n_trials == 3 * len(full.candidates) and first_two.n_trials == 2 * len(full.candidates)
    assert bench.parse_seeds("0,2-3") == {0, 2, 3} and bench.parse_seeds("") is None
    bad = CliRunner().invoke(bench.app, ["replay", "--table", str(table), "--seeds", "a-b"])
    assert bad.exit_code == 2 and "--seeds" in bad.output


def test_the_replays_refuse_tables_of_two_engine_versions_or_a_trial_twice(table, tmp_path):
    """A grid mixing two engines' trials, or counting one trial twice, has a truth no engine trains."""
    newer = tmp_path / "newer.csv"
    with table.open() as f:
        rows = list(csv.DictReader(f))
    with newer.open("w", newline="") as f:
        writer = csv.DictWriter(f, [*rows[0], "engine_version"])
        writer.writeheader()
        writer.writerows(r | {"seed": str(int(r["seed"]) + 3), "engine_version": "5"} for r in rows)
    assert len(bench.read_table(newer)[0].seeds[Candidate("seq_sft", 0.0)]) == 3  # one version's: read
    with pytest.raises(typer.BadParameter, match="engine version 1: table.csv; engine version 5: newer.csv"):
        bench.read_table(table, newer)
    with pytest.raises(typer.BadParameter, match=r"table.csv holds seq_sft \$16 share 0 seed 0 of toy: each trial"):
        bench.read_table(table, table)
    refused = CliRunner().invoke(bench.app, ["replay", "--table", str(table), "--table", str(newer)])
    assert refused.exit_code == 2 and "--table" in refused.output


@pytest.mark.slow
def test_the_collector_trains_the_study_grid_once_and_goes_on_where_it_stopped(engine_cache_dir, monkeypatch,
                                                                               tmp_path):
    """One real trial of cities (16 gold labels: the grid's cheapest point), then a rerun that trains
    nothing; the row reads back as a grid the replays use."""
    from bench.service import search_table
    from worker.engine.precision import cpu_kind, default_precision
    from worker.engine.spec import ENGINE_VERSION

    monkeypatch.setenv("LABELMIX_CACHE_DIR", str(engine_cache_dir))
    out = tmp_path / "table.csv"
    args = ["collect", "--out", str(out), "--task", "cities", "--methods", "seq_sft", "--budgets", "16",
            "--shares", "0,1", "--seeds", "0", "--limit", "1"]
    first = CliRunner().invoke(search_table.app, args)
    assert first.exit_code == 0, first.output
    assert "2 points x 1 seeds" in first.output and "1 trials to train" in first.output
    again = CliRunner().invoke(search_table.app, args[:-2])  # the rest of the grid: the one row is kept
    assert again.exit_code == 0 and "1 rows in" in again.output and "1 trials to train" in again.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2  # the first run's row and the second's
    assert all(int(r["engine_version"]) == ENGINE_VERSION and r["precision"] == default_precision().value
               and r["machine"] == cpu_kind() for r in rows)
    grid = bench.read_table(out)[0]
    assert grid.task == "cities" and grid.budget == 16.0
    assert sorted(grid.seeds) == [Candidate("seq_sft", 0.0), Candidate("seq_sft", 1.0)]
    assert all(0.0 <= v <= 1.0 for values in grid.seeds.values() for v in values)


def _unwrapped(output: str) -> str:
    """A CLI error as one line: typer's error panel wraps its text between border characters."""
    return " ".join(output.replace("│", " ").split())


def test_the_collector_will_not_add_this_engines_trials_to_an_earlier_engines_table(tmp_path):
    from bench.service import search_table
    from worker.engine.spec import ENGINE_VERSION

    old = tmp_path / "table.csv"
    header = search_table.COLUMNS[: search_table.COLUMNS.index("engine_version")]  # version 1's columns
    old.write_text(",".join(header) + "\n")
    before = old.read_text()
    refused = CliRunner().invoke(search_table.app, ["collect", "--out", str(old), "--task", "cities", "--methods",
                                                    "seq_sft", "--budgets", "16", "--shares", "0", "--seeds", "0"])
    message = _unwrapped(refused.output)
    assert refused.exit_code == 2 and "--out" in message and "new file" in message
    assert "missing: engine_version, precision, machine" in message
    assert old.read_text() == before  # nothing appended

    # A table of this engine's columns, but its rows trained by another engine version: it takes no more.
    other = tmp_path / "older.csv"
    row = {c: "0" for c in search_table.COLUMNS} | {"engine_version": str(ENGINE_VERSION - 1)}
    other.write_text(",".join(search_table.COLUMNS) + "\n" + ",".join(row.values()) + "\n")
    before = other.read_text()
    older = CliRunner().invoke(search_table.app, ["collect", "--out", str(other), "--task", "cities",
                                                  "--methods", "seq_sft", "--budgets", "16", "--shares", "0"])
    message = _unwrapped(older.output)
    assert older.exit_code == 2 and f"engine version {ENGINE_VERSION - 1}, not {ENGINE_VERSION}" in message
    assert "new file" in message and other.read_text() == before
    bad = CliRunner().invoke(search_table.app, ["collect", "--out", str(tmp_path / "new.csv"), "--precision", "fp16"])
    assert bad.exit_code == 2 and "--precision" in bad.output


def test_a_table_of_this_engine_goes_on_in_either_precision_and_counts_each(tmp_path):
    """Rows of this engine version in bf16 and fp32 (two CPU kinds' sessions) are one table: the
    collector skips both and names how many each precision trained."""
    from bench.service import search_table
    from worker.engine.spec import ENGINE_VERSION

    table = tmp_path / "table.csv"
    base = {c: "0" for c in search_table.COLUMNS} | {
        "task": "cities", "model": "minilm-l6", "recipe": "fast", "method": "seq_sft", "budget": "16",
        "engine_version": str(ENGINE_VERSION)}
    rows = [base | {"weak_share": "0", "seed": "0", "precision": "bf16"},
            base | {"weak_share": "1", "seed": "0", "precision": "bf16"},
            base | {"weak_share": "0", "seed": "1", "precision": "fp32"}]
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, search_table.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    point = ("cities", "minilm-l6", "fast", "seq_sft", 16.0)
    read = search_table._rows(table, ENGINE_VERSION)
    assert {search_table._trial_key(r) for r in read} == {point + (0.0, 0), point + (1.0, 0), point + (0.0, 1)}
    assert search_table._precisions(read) == "2 bf16, 1 fp32"
    assert search_table._precisions(search_table._rows(tmp_path / "absent.csv", ENGINE_VERSION)) == "none"


def test_top_two_proposes_each_draws_best_untried_candidate_when_a_measured_one_leads_every_draw():
    measured, near, far = Candidate("seq_sft", 0.5), Candidate("seq_sft", 0.75), Candidate("seq_sft", 0.0)
    samples = np.array([[0.9, 0.6, 0.5], [0.9, 0.4, 0.7], [0.9, 0.6, 0.3]])  # `measured` leads every draw
    found = Standing(measured, 0.0, [measured, near, far], samples)
    assert found.draw_leaders([near, far]) == [near, far, near]
    rng = np.random.default_rng(0)
    assert top_two(found, rng, beta=1.0, allowed=[near, far]) == near  # the first draw's best untried
    assert top_two(found, rng, beta=0.0, allowed=[near, far]) == far  # the first later draw naming another


def test_between_equal_candidates_the_search_asks_one_whose_weak_stage_is_trained():
    from app.allocations.strategies import Chances, propose

    seq_half, unc_half = Candidate("seq_sft", 0.5), Candidate("uncertainty_sft", 0.5)
    seq_quarter, logconf_half = Candidate("seq_sft", 0.25), Candidate("logconf_sft", 0.5)
    candidates = [seq_half, unc_half, seq_quarter, logconf_half]
    found = Chances(best=seq_half, best_mean=0.7, improvement={c: 0.01 for c in candidates},
                    beat={c: 0.1 for c in candidates})
    # uncertainty_sft at seq_sft's share reuses its weak stage; logconf_sft's weak stage has its own loss.
    assert propose(found, candidates, {seq_half: 2}) == unc_half
    assert propose(found, [seq_half, seq_quarter, logconf_half], {seq_half: 2}) == seq_quarter  # lowest share
    better = Chances(seq_half, 0.7, {**found.improvement, seq_quarter: 0.02}, found.beat)
    assert propose(better, candidates, {seq_half: 2}) == seq_quarter  # only between equals


def test_the_quarter_opening_sees_a_steep_rise_from_all_gold(tmp_path):
    # All gold is poor, a little weak data is best, then a slow decline: the shape of cities $256.
    def rise(method, share, budget):
        return (0.52 if share == 0 else 0.65 - 0.04 * share) - (0.06 if method == "logconf_sft" else 0)

    path = tmp_path / "rise.csv"
    write_table(path, rise, budgets=(256.0,), seeds=3, noise=0.003)
    (grid,) = bench.read_table(path)
    quarter = STRATEGIES["surface_quarter"](grid.candidates, seed=0)
    assert quarter.first == [Candidate("seq_sft", s) for s in (0.0, 1.0, 0.25)] + [Candidate("logconf_sft", 0.25)]
    found = bench.measure(grid, "surface_quarter", 20, 12, 0.01, seeds_per_ask=2, stop_probability=0.0)
    assert found["final_within"] >= 0.9


def test_the_stop_chance_reads_the_share_lattice_an_allocation_asks():
    """The stop rule reads joint draws of the surface on the shares an allocation can ask (0.05 steps):
    a table in eighths and a grid in 0.05 steps give the same chance, where the product of each
    candidate's chance taken alone would count the same hope over and over as the shares get finer."""
    from app.allocations.strategies import untried_chances

    measured = {0.0: 0.52, 0.25: 0.66, 0.5: 0.65, 1.0: 0.62}
    results = {Candidate("seq_sft", s): [a - 0.01, a + 0.01] for s, a in measured.items()}

    def read(step):
        shares = [round(i * step, 6) for i in range(round(1 / step) + 1)]
        found = untried_chances(results, [Candidate("seq_sft", s) for s in shares], margin=0.01)
        assert set(found.each) == {Candidate("seq_sft", s) for s in shares if s not in measured}
        assert all(p <= found.any + 1e-12 for p in found.each.values())  # the same draws: none exceeds any
        return found.any, 1 - np.prod([1 - p for p in found.each.values()])

    (eighths, _), (twentieths, product) = read(1 / 8), read(0.05)
    assert 0.05 < twentieths < 0.95 and abs(eighths - twentieths) < 0.05
    assert product > twentieths + 0.05
    assert untried_chances(results, list(results), 0.01).any == 0.0  # nothing untried, nothing to gain


def test_the_command_measures_the_stop_rule_at_several_thresholds(table, tmp_path):
    out = tmp_path / "thresholds.json"
    args = ["replay", "--table", str(table), "--budgets", "16", "--strategies", "surface", "--replays", "2",
            "--references", "0", "--max-fraction", "0.5", "--stop-probabilities", "0.2,0.5", "--json", str(out)]
    result = CliRunner().invoke(bench.app, args)
    assert result.exit_code == 0, result.output
    rows = {r["strategy"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"surface", "surface(stop_probability=0.2)", "surface(stop_probability=0.5)",
                         "surface(stop_probability=0.0)"}
    assert rows["surface(stop_probability=0.5)"]["trials_used"] <= rows["surface(stop_probability=0.0)"]["trials_used"]
    bad = CliRunner().invoke(bench.app, args[:-4] + ["--stop-probabilities", "1.5"])
    assert bad.exit_code == 2 and "between 0 and 1" in bad.output
