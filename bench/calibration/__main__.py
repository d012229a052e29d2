"""`python -m bench.calibration`: measure the stated intervals' coverage on trials trained for it
(a checkout's research harness, not a command of the installed service)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from app.cli_values import numbers
from app.errors import RequestErrors
from worker.engine.spec import Method, Recipe

from .report import calibrate as run
from .runs import Grid
from .runs import adopt as adopt_trials

app = typer.Typer(add_completion=False)


@app.command()
def calibrate(
    task: Annotated[str, typer.Option(help="a built-in task")] = "word_sentiment",
    model: str = "minilm-l6",
    method: str = "seq_sft",
    recipe: str = "fast",
    budgets: Annotated[str, typer.Option(help="comma-separated budgets ($)")] = "16,64,256",
    shares: Annotated[str, typer.Option(help="comma-separated weak shares of spend")] = "0,0.25,0.5,1",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds, more than the largest of --measured")] = "0,1,2,3,4,5",
    measured: Annotated[str, typer.Option(help="seeds an interval is built from, comma-separated")] = "1,2,3",
    results: Annotated[str, typer.Option(help="JSONL of trial results: resumed, trains only what is missing")] = "labelmix-calibration.jsonl",
    adopt: Annotated[
        Optional[list[Path]],
        typer.Option(exists=True, dir_okay=False,
                     help="a `labelmix trials export` file: its trials at the grid's specs count (repeat it)"),
    ] = None,
    workers: Annotated[int, typer.Option(help="trials at once, one torch thread each")] = 2,
    replicates: int = 200,
    json_path: Annotated[Optional[str], typer.Option("--json", help="write the report here")] = None,
) -> None:
    """Measure the stated intervals' coverage: fresh seeds at a grid's points, random test halves."""
    seed_list = numbers(seeds, int, "--seeds")
    ks = numbers(measured, int, "--measured")
    if not ks or max(ks) >= len(seed_list) or min(ks) < 1:
        raise typer.BadParameter(f"each must be 1 to {len(seed_list) - 1} (fewer than --seeds)", param_hint="--measured")
    try:
        chosen_method, chosen_recipe = Method(method), Recipe(recipe)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--method/--recipe") from None
    grid = Grid(task, model, chosen_method, chosen_recipe, tuple(numbers(budgets, float, "--budgets")),
                tuple(numbers(shares, float, "--shares")), tuple(seed_list))
    if adopt:
        try:
            taken = adopt_trials(grid, Path(results), adopt)
        except RequestErrors as exc:
            problems = "; ".join(message for _, message in exc.problems)
            raise typer.BadParameter(problems, param_hint="--adopt") from None
        typer.echo(f"took {taken} trials from {', '.join(map(str, adopt))}")
    run(grid, Path(results), workers, replicates, ks, Path(json_path) if json_path else None)


if __name__ == "__main__":
    app()
