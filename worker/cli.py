"""The `labelmix` command line: run a trial, build weak labels, list tasks.

Results go to stdout as JSON; progress goes to stderr, so `labelmix trial ... > result.json` works.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="labelmix: how to split a labeling budget between weak and gold labels.", no_args_is_help=True)
stderr = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    stderr.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


@app.command()
def trial(
    task: Annotated[str, typer.Option(help="task name (see `labelmix tasks`)")],
    model: Annotated[str, typer.Option(help="packaged model name, local directory or hub id")] = "minilm-l6",
    method: Annotated[str, typer.Option(help="seq_sft, icl, prompted_sft, uncertainty_sft, logconf_sft")] = "seq_sft",
    n_weak: Annotated[int, typer.Option(help="weak labels to buy")] = 0,
    n_gold: Annotated[int, typer.Option(help="gold labels to buy")] = 0,
    seed: int = 0,
    weak_labeler: Annotated[str, typer.Option(help="default, bow[:N], sft:<model>[:N] or task")] = "default",
    recipe: Annotated[str, typer.Option(help="training recipe: fast or paper (see docs/engine.md)")] = "fast",
    param: Annotated[
        Optional[list[str]], typer.Option("--param", "-p", help="method parameter as name=value (repeatable)")
    ] = None,
) -> None:
    """Run one elicitation trial and print its result as JSON."""
    from pydantic import ValidationError

    # the engine loads when the command runs, not for --help
    from .engine import AllocationError, ModelSpecError, TrialSpec, UnknownTaskError, WeakLabelerError, run_trial

    try:
        params = dict(p.split("=", 1) for p in param or [])
    except ValueError:
        raise _fail("--param takes name=value") from None
    try:
        spec = TrialSpec(
            task=task, model=model, method=method, n_weak=n_weak, n_gold=n_gold, seed=seed,
            weak_labeler=weak_labeler, recipe=recipe, params=params,
        )
    except ValidationError as exc:
        raise _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[auroc]}"), TimeElapsedColumn(), console=stderr, transient=False,
    ) as bar:
        stage_bars: dict[str, int] = {}

        def on_progress(event) -> None:
            if event.stage not in stage_bars:
                stage_bars[event.stage] = bar.add_task(f"{event.stage} stage", total=event.total_steps, auroc="")
            auroc = f"val AUROC {event.val_auroc:.3f}" if event.val_auroc is not None else None
            fields = {"auroc": auroc} if auroc else {}
            bar.update(stage_bars[event.stage], completed=event.step, total=event.total_steps, **fields)

        try:
            result = run_trial(spec, progress=on_progress)
        except (AllocationError, ModelSpecError, UnknownTaskError, WeakLabelerError) as exc:
            raise _fail(str(exc)) from None
    typer.echo(result.model_dump_json(indent=2))


@app.command("weak-labels")
def weak_labels_command(
    task: Annotated[str, typer.Option(help="task name")],
    labeler: Annotated[str, typer.Option(help="default, bow[:N], sft:<model>[:N] or task")] = "default",
) -> None:
    """Build (once) and cache the task's weak labels; print their accuracy as JSON."""
    # the engine loads when the command runs, not for --help
    from .engine import UnknownTaskError, WeakLabelerError, get_task, weak_labels
    from .engine.weak_labels import describe

    try:
        labels = weak_labels(get_task(task), labeler)
    except (UnknownTaskError, WeakLabelerError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(describe(labels), indent=2))


# A group, not a command: alone it lists the tasks; the service adds `tasks add FILE` to it (app.client_cli).
tasks_app = typer.Typer(help="Tasks: alone, list the built-in and hub ones; the commands below act on the service's.")
app.add_typer(tasks_app, name="tasks")


@tasks_app.callback(invoke_without_command=True)
def tasks(ctx: typer.Context) -> None:
    """List the tasks: built-in ones work offline, the others load from the Hugging Face hub."""
    if ctx.invoked_subcommand is not None:
        return
    # the engine loads when the command runs, not for --help
    from .engine.tasks import BUILTIN_TASKS, HF_LOADERS

    for name in BUILTIN_TASKS:
        typer.echo(f"{name}\tbuilt-in (offline)")
    for name in HF_LOADERS:
        typer.echo(f"{name}\tHugging Face hub")


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what the engine does")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
