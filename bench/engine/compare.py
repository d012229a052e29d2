"""Training speed and accuracy of the engine's loop against a plain transformers.Trainer.

Both run the same gold-only seq_sft trial (same examples, model, seed and hyperparameters);
speed is training examples per second of the stage, evaluations and early stopping included.

    python -m bench.engine.compare --n-gold 500 --repeats 3
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from worker.engine.spec import MethodParams, TrialSpec
from worker.engine.trial import run_trial

from .trainer_baseline import run_trainer_baseline


def _engine_run(spec: TrialSpec) -> tuple[dict, object]:
    trial = run_trial(spec)
    (stage,) = trial.stages
    return {
        "steps": stage.steps,
        "examples": stage.examples,
        "wall_s": stage.wall_s,
        "examples_per_s": stage.examples / stage.wall_s,
        "best_step": stage.best_step,
        "best_val_auroc": stage.best_val_auroc,
        "test_accuracy": trial.test_accuracy,
    }, trial


def _trainer_run(spec: TrialSpec) -> dict:
    baseline = run_trainer_baseline(spec)
    return {
        "steps": baseline.steps,
        "examples": baseline.examples,
        "wall_s": baseline.wall_s,
        "examples_per_s": baseline.examples_per_s,
        "best_step": baseline.best_step,
        "best_val_auroc": baseline.best_val_auroc,
        "test_accuracy": baseline.test_accuracy,
    }


def _median_run(runs: list[dict]) -> dict:
    """The run of median speed, with every run's examples/s kept beside it."""
    ordered = sorted(runs, key=lambda r: r["examples_per_s"])
    return {**ordered[len(ordered) // 2], "examples_per_s_runs": [round(r["examples_per_s"], 2) for r in runs]}


def compare(
    n_gold: int = 500,
    task: str = "cities",
    model: str = "minilm-l6",
    seed: int = 0,
    n_test: int | None = None,
    max_steps: int | None = None,
    max_length: int | None = None,
    repeats: int = 1,
) -> dict:
    """Run the trial through both harnesses; `ratio` above 1 means the engine trains faster.

    With repeats > 1 the harnesses alternate (engine, Trainer, Trainer, engine, ...) so that
    neither always runs first (warm caches) and machine noise falls on both; medians are compared.
    """
    overrides = {"n_test": n_test, "max_steps_per_stage": max_steps, "max_length": max_length}
    params = MethodParams(**{k: v for k, v in overrides.items() if v is not None})
    # The paper's loop, which the Trainer baseline reproduces; bow weak labels only shape the pool here.
    spec = TrialSpec(task=task, model=model, n_gold=n_gold, seed=seed, weak_labeler="bow", recipe="paper", params=params)

    engine_runs, trainer_runs, trial = [], [], None
    for i in range(repeats):
        if i % 2 == 0:
            run, trial = _engine_run(spec)
            engine_runs.append(run)
            trainer_runs.append(_trainer_run(spec))
        else:
            trainer_runs.append(_trainer_run(spec))
            run, trial = _engine_run(spec)
            engine_runs.append(run)
    engine, trainer = _median_run(engine_runs), _median_run(trainer_runs)
    (stage,) = trial.stages
    return {
        "task": task,
        "model": model,
        "n_gold": n_gold,
        "seed": seed,
        "repeats": repeats,
        "n_train": stage.n_train,
        "n_val": stage.n_val,
        "n_test": trial.n_test,
        "batch_size": params.batch_size,
        "device": trial.device,
        "engine": engine,
        "trainer": trainer,
        "ratio": engine["examples_per_s"] / trainer["examples_per_s"],
    }


def _print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result['task']} / {result['model']} / n_gold={result['n_gold']} "
        f"(train {result['n_train']}, val {result['n_val']}, test {result['n_test']}) on {result['device']}"
    )
    table.add_column("harness")
    for column in ("steps", "examples", "wall s", "examples/s", "best step", "val AUROC", "test acc"):
        table.add_column(column, justify="right")
    for name in ("engine", "trainer"):
        r = result[name]
        auroc = "-" if r["best_val_auroc"] is None else f"{r['best_val_auroc']:.3f}"
        table.add_row(
            name,
            str(r["steps"]),
            str(r["examples"]),
            f"{r['wall_s']:.1f}",
            f"{r['examples_per_s']:.1f}",
            str(r["best_step"]),
            auroc,
            f"{r['test_accuracy']:.3f}",
        )
    console = Console()
    console.print(table)
    console.print(f"examples/s per run: engine {result['engine']['examples_per_s_runs']}, "
                  f"Trainer {result['trainer']['examples_per_s_runs']}")
    console.print(f"speed ratio engine / Trainer (medians of {result['repeats']}): {result['ratio']:.2f}")


def main(
    n_gold: Annotated[int, typer.Option(help="gold labels bought (train + validation)")] = 500,
    task: str = "cities",
    model: str = "minilm-l6",
    seed: int = 0,
    n_test: Annotated[int | None, typer.Option(help="score on the first n test examples")] = None,
    max_steps: Annotated[int | None, typer.Option(help="cap on optimizer steps")] = None,
    max_length: Annotated[int | None, typer.Option(help="tokens per input")] = None,
    repeats: Annotated[int, typer.Option(help="runs of each harness, alternating; medians compared")] = 3,
) -> None:
    result = compare(n_gold, task, model, seed, n_test, max_steps, max_length, repeats)
    _print_table(result)
    print(json.dumps(result))  # one line, for scripts


if __name__ == "__main__":
    typer.run(main)
