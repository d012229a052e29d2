"""How close each search strategy gets to the grid's optimum, replayed on a table of real trials:
`python -m bench.service.search replay --table docs/bench/search-table-cities.csv`.

A benchmark, not a test. The table (one row per trial: task, method, budget, weak_share, seed,
test_accuracy; built by `python -m bench.service.search_table`) is the whole grid; a point's true
mean is the mean over its seeds, the grid optimum at a budget the best true mean there. A replay
runs one strategy (app.allocations.strategies) at one budget: each trial it asks returns one
stored seed of that candidate, drawn at random, and after each trial the strategy's choice (its
best measured mean) is scored by its regret, the optimum's true mean minus the choice's. Reported
per task and budget, over many replays: mean regret and how often the choice is within `--within`
(1 point) of the optimum, at every trial count up to `--max-fraction` of the grid's trials; for
strategies that stop on their own, the trials they used and the quality when they stopped, against
the same strategy made to run to the cap.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from app.allocations.strategies import Candidate, Strategy, SurfaceSearch
from bench.service.strategies import STRATEGIES, CornersThenTPEWithStop, TopTwoSearch
from worker.engine.spec import Method

app = typer.Typer(help=__doc__.split("\n\n")[0], no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Replays of search strategies on a table of trials."""


@dataclass
class Grid:
    """One task's trials at one budget: every candidate's seeds."""

    task: str
    budget: float
    seeds: dict[Candidate, list[float]]

    @property
    def candidates(self) -> list[Candidate]:
        """In the methods' order of the engine (as an allocation lists them), then by share."""
        order = {m.value: i for i, m in enumerate(Method)}
        return sorted(self.seeds, key=lambda c: (order.get(c.method, len(order)), c.method, c.share))

    def truth(self, candidate: Candidate) -> float:
        return float(np.mean(self.seeds[candidate]))

    @property
    def optimum(self) -> float:
        return max(self.truth(c) for c in self.seeds)

    @property
    def n_trials(self) -> int:
        return sum(len(v) for v in self.seeds.values())


def read_table(*paths: Path, only_seeds: set[int] | None = None) -> list[Grid]:
    """The tables' grids, one per (task, budget); with `only_seeds`, only those seeds' trials.

    The tables must be one engine version's (a table without the column is version 1's) and hold each
    trial once: a grid of two engines' trials, or with a trial counted twice, has a truth no engine
    trains, and its replays would measure nothing."""
    seeds: dict[tuple[str, float], dict[Candidate, list[float]]] = defaultdict(lambda: defaultdict(list))
    versions: dict[str, set[str]] = defaultdict(set)
    seen: dict[tuple, Path] = {}
    for path in paths:
        with path.open() as f:
            for row in csv.DictReader(f):
                versions[row.get("engine_version") or "1"].add(path.name)
                trial = (row["task"], float(row["budget"]), row["method"], float(row["weak_share"]),
                         int(row["seed"]))
                if trial in seen:
                    holders = (f"{path.name} holds" if seen[trial] == path
                               else f"{path.name} and {seen[trial].name} both hold")
                    raise typer.BadParameter(
                        f"{holders} {row['method']} ${trial[1]:g} share {trial[3]:g} seed {trial[4]} of "
                        f"{trial[0]}: each trial once", param_hint="--table")
                seen[trial] = path
                if only_seeds is not None and trial[4] not in only_seeds:
                    continue
                key = (row["task"], float(row["budget"]))
                seeds[key][Candidate(row["method"], float(row["weak_share"]))].append(float(row["test_accuracy"]))
    if len(versions) > 1:
        found = "; ".join(f"engine version {v}: {', '.join(sorted(names))}"
                          for v, names in sorted(versions.items()))
        raise typer.BadParameter(f"the tables mix engine versions ({found}): replay one version's tables",
                                 param_hint="--table")
    return [Grid(task, budget, dict(s)) for (task, budget), s in sorted(seeds.items())]


def parse_seeds(text: str) -> set[int] | None:
    """'0-8' or '0,1,2' (or both, comma-separated) as a set; None for ''."""
    if not text.strip():
        return None
    seeds: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            seeds.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise typer.BadParameter(f"takes seeds like 0-8 or 0,1,2, got {text!r}", param_hint="--seeds") from None
    return seeds


@dataclass
class Replay:
    regret: list[float]  # after each trial (the last value repeated once stopped)
    used: int  # trials asked before stopping (the cap when it never stopped)
    stopped: bool


def replay(grid: Grid, strategy: Strategy, cap: int, rng: np.random.Generator, seeds_per_ask: int = 1) -> Replay:
    """Run `strategy` on `grid` for up to `cap` trials. Each ask is `seeds_per_ask` trials of that
    candidate (as an allocation measures a point on all its seeds): distinct stored seeds, drawn at random."""
    regret: list[float] = []
    while len(regret) < cap:
        candidate = strategy.ask()
        if candidate is None:
            break
        values = grid.seeds[candidate]
        drawn = rng.choice(len(values), min(seeds_per_ask, len(values), cap - len(regret)), replace=False)
        for i in drawn:
            strategy.tell(candidate, values[i])
            regret.append(grid.optimum - grid.truth(strategy.choice()))
    used = len(regret)
    regret += [regret[-1]] * (cap - used) if regret else [grid.optimum] * cap
    return Replay(regret, used, used < cap)


def measure(grid: Grid, name: str, replays: int, cap: int, within: float, label: str | None = None,
            seeds_per_ask: int = 1, **options) -> dict:
    """A strategy's replays on one grid, summed up."""
    runs = []
    for r in range(replays):
        strategy = STRATEGIES[name](grid.candidates, seed=r, **options)
        runs.append(replay(grid, strategy, cap, np.random.default_rng(10_000 + r), seeds_per_ask))
    regret = np.array([run.regret for run in runs])
    used = np.array([run.used for run in runs])
    final = regret[np.arange(len(runs)), used - 1] if cap else np.zeros(len(runs))
    return {
        "strategy": label or name + ("(" + ",".join(f"{k}={v}" for k, v in options.items()) + ")" if options else ""),
        "task": grid.task, "budget": grid.budget, "grid_trials": grid.n_trials, "cap": cap,
        "mean_regret": regret.mean(axis=0).round(5).tolist(),
        "within": (regret <= within + 1e-12).mean(axis=0).round(4).tolist(),
        "trials_used": float(used.mean()), "stopped": float(np.mean([run.stopped for run in runs])),
        "final_regret": float(final.mean()), "final_within": float((final <= within + 1e-12).mean()),
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = sorted({(r["task"], r["budget"]) for r in rows})
    columns = min(4, len(grids))
    lines = (len(grids) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3 * lines), squeeze=False, sharey=True)
    for ax, (task, budget) in zip(axes.flat, grids):
        for r in rows:
            if (r["task"], r["budget"]) == (task, budget):
                ax.plot(range(1, r["cap"] + 1), r["mean_regret"], label=r["strategy"])
        ax.set_title(f"{task}, ${budget:g}", fontsize=9)
        ax.set_xlabel("trials")
        ax.axhline(0.01, color="grey", lw=0.5, ls=":")
    axes.flat[0].set_ylabel("mean regret (accuracy)")
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(grids):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


@app.command("replay")
def replay_command(
    table: Annotated[list[Path], typer.Option(exists=True, dir_okay=False,
                                              help="the trials (search_table); repeat for several tables")],
    strategies: Annotated[str, typer.Option(help="comma-separated: " + ", ".join(STRATEGIES))] = ",".join(STRATEGIES),
    replays: Annotated[int, typer.Option(min=1)] = 200,
    max_fraction: Annotated[float, typer.Option(min=0.01, max=1.0, help="the cap, as a share of the grid's trials")]
    = 0.25,
    within: Annotated[float, typer.Option(min=0.0, help="a choice this close to the optimum counts as found")] = 0.01,
    budgets: Annotated[str, typer.Option(help="comma-separated: only these budgets (default: all in the table)")] = "",
    grid_seeds: Annotated[int, typer.Option(min=0, help="seeds per candidate the cap is a share of (0: as many as "
                                                        "the table holds); for a table still being collected")] = 0,
    seeds: Annotated[str, typer.Option(help="only these seeds' trials, e.g. 0-8 (default: every stored seed); "
                                            "a seed still being collected would give some candidates more")] = "",
    seeds_per_ask: Annotated[int, typer.Option(min=1, help="trials each ask returns (distinct seeds): 2 is how an "
                                                           "allocation with its default seeds measures a point")] = 1,
    references: Annotated[int, typer.Option(min=0, help="also every candidate asked 1..N times (each ask "
                                                        "--seeds-per-ask seeds), coarse to fine: what the grid "
                                                        "itself reaches, past the cap")] = 3,
    stop_probabilities: Annotated[str, typer.Option(help="comma-separated: each stopping strategy also at these "
                                                         "stop probabilities (default: only its own)")] = "",
    json_path: Annotated[Optional[Path], typer.Option("--json")] = None,
    png: Annotated[Optional[Path], typer.Option(help="regret curves")] = None,
) -> None:
    """Replay each strategy on each (task, budget) of the table and print how close it got."""
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if unknown := [n for n in names if n not in STRATEGIES]:
        raise typer.BadParameter(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    rows = []
    try:
        only = {float(b) for b in budgets.split(",") if b.strip()}
    except ValueError:
        raise typer.BadParameter(f"takes comma-separated numbers, got {budgets!r}", param_hint="--budgets") from None
    try:
        thresholds = [float(p) for p in stop_probabilities.split(",") if p.strip()]
    except ValueError:
        raise typer.BadParameter(f"takes comma-separated numbers, got {stop_probabilities!r}",
                                 param_hint="--stop-probabilities") from None
    if bad := [p for p in thresholds if not 0.0 < p < 1.0]:
        raise typer.BadParameter(f"each must lie between 0 and 1, got {bad}", param_hint="--stop-probabilities")
    for grid in read_table(*table, only_seeds=parse_seeds(seeds)):
        if only and grid.budget not in only:
            continue
        cap = max(1, int((len(grid.candidates) * grid_seeds if grid_seeds else grid.n_trials) * max_fraction))
        for name in names:
            rows.append(measure(grid, name, replays, cap, within, seeds_per_ask=seeds_per_ask))
            if issubclass(STRATEGIES[name], (SurfaceSearch, TopTwoSearch, CornersThenTPEWithStop)):
                for p in [*thresholds, 0.0]:  # 0: run to the cap, what the stop rule saves against
                    rows.append(measure(grid, name, replays, cap, within, seeds_per_ask=seeds_per_ask,
                                        stop_probability=p))
            echo(grid, rows[-1], within)
        for times in range(1, references + 1):
            rows.append(measure(grid, "grid", replays, times * len(grid.candidates) * seeds_per_ask, within,
                                label=f"whole grid x{times}", seeds_per_ask=seeds_per_ask))
            echo(grid, rows[-1], within)
    print_table(rows, within)
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1) + "\n")
    if png:
        plot(rows, png)


def echo(grid: Grid, row: dict, within: float) -> None:
    typer.echo(f"{grid.task} ${grid.budget:g} {row['strategy']}: within {within} in "
               f"{row['final_within']:.0%} at {row['trials_used']:.1f} of {grid.n_trials} trials", err=True)


def print_table(rows: list[dict], within: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"search replays: choice within {within} of the grid optimum")
    for column in ("task", "budget", "strategy", "grid trials", "cap", "trials used", "within", "mean regret"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["task"], f"${r['budget']:g}", r["strategy"], str(r["grid_trials"]), str(r["cap"]),
                      f"{r['trials_used']:.1f}", f"{r['final_within']:.0%}", f"{r['final_regret']:.4f}")
    console = Console(width=140)
    console.print(table)
    overall = Table(title="every grid: share of (grid, replay) pairs within the margin, and trials used")
    for column in ("strategy", "grids", "within", "worst grid", "trials used", "of caps"):
        overall.add_column(column)
    for name in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == name]
        overall.add_row(name, str(len(mine)), f"{np.mean([r['final_within'] for r in mine]):.0%}",
                        f"{min(r['final_within'] for r in mine):.0%}", f"{sum(r['trials_used'] for r in mine):.1f}",
                        str(sum(r["cap"] for r in mine)))
    console.print(overall)


if __name__ == "__main__":
    app()
