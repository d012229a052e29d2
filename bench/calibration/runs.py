"""Fresh trials for `python -m bench.calibration`: a grid of points, several seeds each, straight on the engine.

Results go to a JSONL file, one trial per line, appended as each finishes: a rerun with the same
file trains only what is missing. Trials run in worker processes with one torch thread each (two
processes of several threads on a small CPU slow each other down tenfold).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from app.allocations.search import SearchSpace
from worker.engine.spec import Method, Recipe, TrialSpec, recipe_params


@dataclass(frozen=True)
class Grid:
    task: str
    model: str
    method: Method
    recipe: Recipe
    budgets: tuple[float, ...]
    shares: tuple[float, ...]
    seeds: tuple[int, ...]
    weak_cost: float = 0.1
    gold_cost: float = 1.0
    weak_labeler: str = "default"

    def specs(self) -> list[TrialSpec]:
        from worker.engine.tasks import get_task
        from worker.engine.weak_labels import default_labeler_name, labeler_train_size

        task = get_task(self.task)
        labeler = default_labeler_name(self.weak_labeler, task.has_own_weak_labels)
        pool_size = len(task.pool) - labeler_train_size(len(task.pool), labeler, task.has_own_weak_labels)
        params = recipe_params(self.recipe)
        counts: list[tuple[int, int]] = []
        for budget in self.budgets:
            space = SearchSpace(
                methods=(self.method,), budget=budget, weak_cost=self.weak_cost, gold_cost=self.gold_cost,
                pool_size=pool_size, model=self.model, params=params, recipe=self.recipe,
            )
            for share in self.shares:
                point = space.point_for(self.method, share)
                if point is not None and (point.n_weak, point.n_gold) not in counts:
                    counts.append((point.n_weak, point.n_gold))
        # Seed by seed, so a run stopped halfway has every point with some seeds.
        return [
            space.spec(_point(self.method, n_weak, n_gold), seed, task=self.task, weak_labeler=labeler)
            for seed in self.seeds
            for n_weak, n_gold in counts
        ]


def _point(method: Method, n_weak: int, n_gold: int):
    from app.allocations.search import Point

    return Point(method, n_weak, n_gold)


def _run_one(spec_json: str) -> str:
    import torch

    torch.set_num_threads(1)
    from worker.engine.trial import run_trial

    return run_trial(TrialSpec.model_validate_json(spec_json)).model_dump_json()


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def adopt(grid: Grid, path: Path, exports: list[Path]) -> int:
    """Append to `path` the grid's trials that a service already trained (`labelmix trials export` files,
    read as `labelmix trials import` reads them): a study's seeds at the grid's points need not train twice.
    Returns how many were taken."""
    from app.trials.exchange import read_records

    wanted = {s.key() for s in grid.specs()} - {r["key"] for r in load_results(path)}
    taken: dict[str, dict] = {}
    for export in exports:
        with export.open() as lines:
            for _, spec, result in read_records(lines):
                if spec.key() in wanted:
                    taken.setdefault(spec.key(), result)
    with path.open("a") as out:
        for result in taken.values():
            out.write(json.dumps(result) + "\n")
    return len(taken)


def run_grid(grid: Grid, path: Path, workers: int) -> list[dict]:
    """Train every spec of the grid not yet in `path`; return all results in it."""
    done = {r["key"] for r in load_results(path)}
    todo = [s for s in grid.specs() if s.key() not in done]
    if todo:
        from worker.engine.tasks import get_task
        from worker.engine.weak_labels import weak_labels

        weak_labels(get_task(grid.task), todo[0].weak_labeler)  # built once, before the pool forks
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with Progress(TextColumn("trials"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn()) as bar, ProcessPoolExecutor(workers) as pool:
            job = bar.add_task("trials", total=len(todo))
            futures = [pool.submit(_run_one, s.model_dump_json()) for s in todo]
            with path.open("a") as out:
                for future in as_completed(futures):
                    out.write(future.result() + "\n")
                    out.flush()
                    bar.advance(job)
    return load_results(path)
