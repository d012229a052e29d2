"""`python -m bench.calibration`: train a grid's points with fresh seeds, then measure the intervals' coverage."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from app.stats.intervals import LEVEL
from .coverage import GridData, choice, coverage
from .runs import Grid, load_results, run_grid

console = Console()


def calibrate(grid: Grid, results: Path, workers: int, reps: int, ks: list[int], json_path: Path | None) -> dict:
    run_grid(grid, results, workers)
    keys = {s.key() for s in grid.specs()}
    data = GridData([r for r in load_results(results) if r["key"] in keys and r.get("test_correct")])
    report = {
        "grid": {"task": grid.task, "model": grid.model, "method": grid.method.value, "recipe": grid.recipe.value,
                 "budgets": grid.budgets, "shares": grid.shares, "seeds": grid.seeds},
        "n_test": data.n_test,
        "points": len(data.points),
        "coverage": [coverage(data, k, reps, LEVEL, moderate=m) for k in ks for m in ((True, False) if k > 1 else (True,))],
        # Choosing needs a seed spread: k >= 2 (each k measured separately).
        "choice": {str(k): choice(data, grid.weak_cost, grid.gold_cost, k=k, reps=reps) for k in ks if k >= 2},
    }
    _print(report)
    if json_path:
        json_path.write_text(json.dumps(report, indent=1))
    return report


def _print(report: dict) -> None:
    table = Table(title=f"Coverage of the {LEVEL:.0%} intervals: {report['grid']['task']}, {report['points']} points, "
                        f"{report['n_test']} test examples split in random halves")
    for column in ("seeds", "seed variance", "expected accuracy", "one new run", "old mean ± sd",
                   "half-width median", "mean"):
        table.add_column(column, justify="right")
    for row in report["coverage"]:
        how = "borrowed" if row["k"] == 1 else ("moderated" if row["moderated"] else "own only")
        table.add_row(str(row["k"]), how, f"{row['expected_coverage']:.3f}", f"{row['one_run_coverage']:.3f}",
                      f"{row['old_plus_minus_coverage']:.3f}", f"{row['median_half_width']:.3f}",
                      f"{row['mean_half_width']:.3f}")
    console.print(table)
    for k, schemes in report["choice"].items():
        table = Table(title=f"Choosing at each budget from {k} seeds (tie rule), scored on fresh seeds and unseen "
                            "examples")
        for column in ("scheme", "bias", "rmse", "mean regret", "coverage", "median half-width"):
            table.add_column(column, justify="right")
        for scheme, row in schemes.items():
            table.add_row(scheme, *("-" if row[c] is None else f"{row[c]:+.3f}" if c == "bias" else f"{row[c]:.3f}"
                                    for c in ("bias", "rmse", "mean_regret", "coverage", "median_half_width")))
        console.print(table)
