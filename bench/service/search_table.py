"""The search benchmark's table: a full grid of real trials, one CSV row each:
`python -m bench.service.search_table collect --task cities --out docs/bench/search-table-cities.csv`.

The grid is the one `labelmix study` runs for the same request (app.studies.grid.plan: the same
label counts per budget, share and method, the same skipped points), trained by the engine the
workers run (worker.engine.trial.run_trial: resident model, weak stages reused between points that
share one), on the task's default weak labels. Rows are appended as trials finish, and a trial whose
row is already in the file is not trained again, so a collection stopped half way (hours on a
2-core CPU) goes on where it stopped. The file is the input of the replays (bench.service.search), kept
in the repository: the replays then need no training.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help=__doc__.split("\n\n")[0], no_args_is_help=True, add_completion=False)

COLUMNS = ["task", "model", "recipe", "weak_labeler", "method", "budget", "weak_share", "n_weak", "n_gold", "seed",
           "test_accuracy", "selection_accuracy", "holdout_accuracy", "test_auroc", "weak_stage_reused", "wall_s",
           "engine_version", "precision", "machine"]
EIGHTHS = ",".join(f"{i / 8:g}" for i in range(9))


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"takes comma-separated numbers, got {text!r}") from None


def _rows(path: Path, engine_version: int) -> list[dict[str, str]]:
    """The rows `path` holds, read once and checked to be this engine version's.

    A table is one engine version's: rows from another would read back as one grid with trials of
    two engines in it. So a table written before these columns (engine version 1's), or holding rows
    of another version, takes no more rows. It may span CPU kinds and precisions, each row naming
    its own: the same trial scores a little differently on each (bf16 against fp32, 60 pairs of
    precision-parity trials: mean difference under 0.001, median 0.003, at most 0.019; bf16 on two
    CPU kinds: median 0.003, at most 0.022), with no direction, against seed scatter of 0.015-0.03
    in these grids. A table that had to come from one CPU kind in one precision would never be
    finished on a machine that changes kind from one session to the next."""
    if not path.exists():
        return []
    with path.open() as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            raise typer.BadParameter(
                f"{path} does not have this collector's columns (missing: {', '.join(missing) or 'none'}; "
                "a table from an earlier engine): write the current engine's trials to a new file",
                param_hint="--out")
        rows = list(reader)
    other = {r["engine_version"] for r in rows} - {str(engine_version)}
    if other:
        raise typer.BadParameter(
            f"{path} holds trials of engine version {', '.join(sorted(other))}, not {engine_version}: "
            "write these trials to a new file", param_hint="--out")
    return rows


def _trial_key(row: dict[str, str]) -> tuple:
    """What makes a row one trial of the grid: (task, model, recipe, method, budget, share, seed)."""
    return (row["task"], row["model"], row["recipe"], row["method"], float(row["budget"]),
            float(row["weak_share"]), int(row["seed"]))


def _precisions(rows: list[dict[str, str]]) -> str:
    """How many rows each precision trained, for the collector's opening line."""
    counts = Counter(r["precision"] for r in rows)
    return ", ".join(f"{n} {p}" for p, n in sorted(counts.items())) or "none"


@app.callback()
def main() -> None:
    """Build the search benchmark's table of trials."""


@app.command()
def collect(
    out: Annotated[Path, typer.Option(help="appended to; trials already in it are skipped (one file per "
                                           "collecting process: two would interleave their rows)")],
    task: Annotated[str, typer.Option(help="a built-in task")] = "cities",
    model: Annotated[str, typer.Option()] = "minilm-l6",
    methods: Annotated[str, typer.Option(help="comma-separated")] = "seq_sft,logconf_sft,uncertainty_sft",
    budgets: Annotated[str, typer.Option(help="comma-separated, in dollars")] = "16,32,64,128,256,512,1024",
    shares: Annotated[str, typer.Option(help="weak shares of spend, comma-separated")] = EIGHTHS,
    seeds: Annotated[str, typer.Option(help="comma-separated")] = "0,1,2",
    recipe: Annotated[str, typer.Option()] = "fast",
    weak_cost: Annotated[float, typer.Option()] = 0.1,
    gold_cost: Annotated[float, typer.Option()] = 1.0,
    limit: Annotated[int, typer.Option(min=0, help="train at most this many trials now (0: all)")] = 0,
    precision: Annotated[str | None, typer.Option(help="fp32 or bf16 (default: what a worker here runs)")] = None,
) -> None:
    """Train the grid's trials not yet in `out`, seed by seed, appending a row as each finishes."""
    from app.studies import grid
    from app.studies.schemas import StudyRequest
    from worker.engine.precision import Precision, default_precision
    from worker.engine.spec import ENGINE_VERSION, Method, TrialSpec, recipe_params
    from worker.engine.tasks import get_task
    from worker.engine.trial import run_trial
    from worker.engine.weak_labels import default_labeler_name, labeler_train_size

    built = get_task(task)
    labeler = default_labeler_name("default", built.has_own_weak_labels)
    n_pool = len(built.pool)
    pool = n_pool - labeler_train_size(n_pool, labeler, built.has_own_weak_labels)
    request = StudyRequest(task=task, model=model, methods=[Method(m) for m in methods.split(",")],
                           budgets=_floats(budgets), weak_shares=_floats(shares), seeds=[int(s) for s in _floats(seeds)],
                           weak_cost=weak_cost, gold_cost=gold_cost, recipe=recipe, weak_labeler=labeler)
    points, skipped = grid.plan(request, pool, recipe_params(request.recipe, request.params))
    try:
        arithmetic = Precision(precision) if precision else default_precision()
    except ValueError:
        raise typer.BadParameter(f"is fp32 or bf16, not {precision!r}", param_hint="--precision") from None
    rows = _rows(out, ENGINE_VERSION)
    done = {_trial_key(r) for r in rows}
    todo = [(seed, p) for seed in request.seeds for p in points
            if (task, model, recipe, p["method"], p["budget"], p["weak_share"], seed) not in done]
    if limit:
        todo = todo[:limit]
    typer.echo(f"{task}: {len(points)} points x {len(request.seeds)} seeds, {len(skipped)} skipped; "
               f"{len(rows)} rows in {out} ({_precisions(rows)}), "
               f"{len(todo)} trials to train in {arithmetic.value}", err=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not out.exists()
    started = time.perf_counter()
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        if new_file:
            writer.writeheader()
        for i, (seed, p) in enumerate(todo, 1):
            spec = TrialSpec(task=task, model=model, method=p["method"], n_weak=p["n_weak"], n_gold=p["n_gold"],
                             seed=seed, weak_labeler=labeler, recipe=request.recipe,
                             params={"precision": arithmetic.value})
            result = run_trial(spec, task=built)
            writer.writerow({
                "task": task, "model": model, "recipe": recipe, "weak_labeler": labeler, "method": p["method"],
                "budget": p["budget"], "weak_share": p["weak_share"], "n_weak": p["n_weak"], "n_gold": p["n_gold"],
                "seed": seed, "test_accuracy": result.test_accuracy, "selection_accuracy": result.selection_accuracy,
                "holdout_accuracy": result.holdout_accuracy, "test_auroc": result.test_auroc,
                "weak_stage_reused": any(s.reused for s in result.stages),
                "wall_s": round(result.wall_s, 2), "engine_version": spec.engine_version,
                "precision": result.precision.value,
                "machine": result.machine,
            })
            f.flush()
            typer.echo(f"  [{i}/{len(todo)}] {p['method']} ${p['budget']:g} share {p['weak_share']:g} seed {seed}: "
                       f"{result.test_accuracy:.3f} in {result.wall_s:.1f} s ({time.perf_counter() - started:.0f} s)",
                       err=True)


if __name__ == "__main__":
    app()
