"""bf16 against fp32 on the same grid points and seeds: does the cheaper arithmetic change a trial's
accuracy, or the answer an allocation gives? (issue 28, item 2)

    python -m bench.service.precision_parity --task word_sentiment --task cities \\
        --budgets 64,256 --shares 0,0.5,1 --seeds 0,1,2,3,4 --processes 2 \\
        --journal .bench/parity.jsonl --json docs/bench/precision-parity.json

The points are the study grid's (app.studies.grid.plan: the same label counts `labelmix study`
trains for those budgets and shares); each (point, seed) is trained twice by the engine itself,
once per precision, with everything else equal, in worker processes of one torch thread. Every
finished trial is appended to the journal first, so an interrupted run goes on where it stopped.

What the report says, per point: both means, and the mean of the per-seed differences (bf16 minus
fp32) with a 90% Student-t interval over seeds. Both arms score the same test examples, so the
interval covers the training seeds; the test set is held fixed. Per budget: each arm's best point,
and whether the answers agree: the same point, or each arm's pick tied with the other's by the
service's own comparison (app.stats.intervals.compare, as a study's winners use it).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import statistics
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Annotated

import typer

from app.stats.intervals import Scores, compare, stack_records, t_quantile
from app.studies.grid import plan
from app.studies.schemas import StudyRequest
from bench.engine.allocation import ONE_THREAD_ENV
from worker.engine.spec import ENGINE_VERSION, Method, Precision, Recipe, recipe_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

LEVEL = 0.9
PRECISIONS = (Precision.fp32, Precision.bf16)
WITHIN = 0.01  # the parity bar: |mean difference| at most this


def _one_thread() -> None:
    os.environ.update(ONE_THREAD_ENV)
    import torch

    torch.set_num_threads(1)


def _train(job: dict) -> dict:
    """One trial in a worker process: the job's point, seed and precision, the fast recipe otherwise."""
    from worker.engine.spec import TrialSpec
    from worker.engine.trial import run_trial

    params = recipe_params(job["recipe"], {"precision": job["precision"]})
    spec = TrialSpec(task=job["task"], method=Method(job["method"]), n_weak=job["n_weak"], n_gold=job["n_gold"],
                     seed=job["seed"], weak_labeler=job["weak_labeler"], recipe=Recipe(job["recipe"]), params=params)
    result = run_trial(spec)
    return {**job, "precision_ran": result.precision, "test_accuracy": result.test_accuracy,
            "test_correct": result.test_correct, "n_test": result.n_test, "learned": result.learned,
            "wall_s": round(result.wall_s, 1), "steps": [s.steps for s in result.stages]}


def _job_id(job: dict) -> tuple:
    # The engine version is part of the identity: a journal row from an older engine (or from before
    # rows named theirs) was trained otherwise, so a rerun trains that trial again.
    return (job["task"], job["n_weak"], job["n_gold"], job["method"], job["seed"], job["precision"],
            job.get("engine_version"))


def plan_jobs(tasks: list[str], budgets: list[float], shares: list[float], seeds: list[int], recipe: str) -> list[dict]:
    """Every (task, grid point, seed, precision), the precisions of a (point, seed) next to each other
    so that both arms run under the same load."""
    from worker.engine.tasks import get_task
    from worker.engine.weak_labels import weak_labels

    jobs = []
    for task in tasks:
        labels = weak_labels(get_task(task), "default")  # built here once, not by two workers at a time
        request = StudyRequest(task=task, budgets=budgets, weak_shares=shares, seeds=seeds, recipe=recipe)
        points, _skipped = plan(request, len(labels.pool), recipe_params(recipe))
        for point in points:
            for seed in seeds:
                for precision in PRECISIONS:
                    jobs.append({**point, "task": task, "seed": seed, "precision": precision.value,
                                 "recipe": recipe, "weak_labeler": labels.labeler,
                                 "engine_version": ENGINE_VERSION})
    return jobs


def journaled(journal: Path) -> dict[tuple, dict]:
    if not journal.exists():
        return {}
    return {_job_id(row): row for row in map(json.loads, journal.read_text().splitlines())}


def complete_points(jobs: list[dict], done: dict[tuple, dict]) -> list[dict]:
    """The journal's trials of the points whose every seed is done in both precisions."""
    points: dict[tuple, list[dict]] = {}
    for job in jobs:
        points.setdefault(_job_id(job)[:4], []).append(job)
    return [done[_job_id(j)] for group in points.values() if all(_job_id(j) in done for j in group) for j in group]


def run_jobs(jobs: list[dict], journal: Path, processes: int) -> list[dict]:
    """The jobs' trials: those the journal holds, then the rest, each appended as it finishes."""
    done = journaled(journal)
    todo = [job for job in jobs if _job_id(job) not in done]
    typer.echo(f"{len(jobs)} trials: {len(jobs) - len(todo)} in {journal}, {len(todo)} to train")
    journal.parent.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_one_thread) as pool, journal.open("a") as out:
        futures = [pool.submit(_train, job) for job in todo]
        for i, future in enumerate(as_completed(futures), 1):
            row = future.result()
            done[_job_id(row)] = row
            out.write(json.dumps(row) + "\n")
            out.flush()
            typer.echo(f"[{i}/{len(todo)}] {row['task']} {row['n_weak']}w+{row['n_gold']}g seed {row['seed']} "
                       f"{row['precision']}: {row['test_accuracy']:.3f} in {row['wall_s']} s")
    return [done[_job_id(job)] for job in jobs]


def _scores(rows: list[dict]) -> Scores:
    from worker.engine.metrics import unpack_correct

    rows = sorted(rows, key=lambda r: r["seed"])
    n_tests = [r["n_test"] for r in rows]
    records = [unpack_correct(r["test_correct"], r["n_test"]) if r.get("test_correct") else None for r in rows]
    return Scores([r["test_accuracy"] for r in rows], min(n_tests), stack_records(records, n_tests))


def paired_difference(fp32: list[dict], bf16: list[dict]) -> dict:
    """Mean of the per-seed differences (bf16 minus fp32) with its t interval over the seeds."""
    by_seed = {r["seed"]: r["test_accuracy"] for r in fp32}
    diffs = [r["test_accuracy"] - by_seed[r["seed"]] for r in bf16 if r["seed"] in by_seed]
    mean = statistics.fmean(diffs)
    if len(diffs) > 1:
        half = t_quantile(LEVEL, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    else:
        half = math.inf
    return {"difference": round(mean, 4), "low": round(mean - half, 4), "high": round(mean + half, 4),
            "level": LEVEL, "n_seeds": len(diffs), "within_0.01": abs(round(mean, 4)) <= WITHIN,  # 0.81 - 0.80 is not above 0.01
            "per_seed": [round(d, 4) for d in diffs]}


def _point_key(row: dict) -> tuple:
    return (row["task"], row["budget"], row["weak_share"], row["method"], row["n_weak"], row["n_gold"])


def _best(points: list[dict], arm: str) -> dict:
    return max(points, key=lambda p: p[arm]["accuracy"])


def report(rows: list[dict]) -> dict:
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for row in rows:
        groups.setdefault(_point_key(row), {p.value: [] for p in PRECISIONS})[row["precision"]].append(row)
    points, scores = [], {}
    for key, arms in groups.items():
        task, budget, share, method, n_weak, n_gold = key
        entry = {"task": task, "budget": budget, "weak_share": share, "method": method, "n_weak": n_weak,
                 "n_gold": n_gold}
        for arm, arm_rows in arms.items():
            accuracies = [r["test_accuracy"] for r in sorted(arm_rows, key=lambda r: r["seed"])]
            entry[arm] = {"accuracy": round(statistics.fmean(accuracies), 4), "per_seed": accuracies,
                          "failed_seeds": sum(r["learned"] is False for r in arm_rows),
                          "wall_s": round(sum(r["wall_s"] for r in arm_rows), 1),
                          "ran": sorted({r["precision_ran"] for r in arm_rows})}
            scores[(key, arm)] = _scores(arm_rows)
        entry["bf16_minus_fp32"] = paired_difference(arms["fp32"], arms["bf16"])
        points.append(entry)
    answers = []
    for task, budget in sorted({(p["task"], p["budget"]) for p in points}):
        mine = [p for p in points if p["task"] == task and p["budget"] == budget]
        picks = {arm: _best(mine, arm) for arm in ("fp32", "bf16")}
        keys = {arm: _point_key(pick) for arm, pick in picks.items()}  # an entry carries its point's fields
        same = keys["fp32"] == keys["bf16"]
        ties = {arm: compare(scores[(keys["bf16"], arm)], scores[(keys["fp32"], arm)]).tie for arm in picks}
        answers.append({
            "task": task, "budget": budget,
            "fp32_pick": {k: picks["fp32"][k] for k in ("weak_share", "n_weak", "n_gold")},
            "bf16_pick": {k: picks["bf16"][k] for k in ("weak_share", "n_weak", "n_gold")},
            "same_point": same,
            "tied_in_each_arm": ties,
            "answers_agree": same or all(ties.values()),
        })
    return {"level": LEVEL, "points": points, "answers": answers,
            "all_within_0.01": all(p["bf16_minus_fp32"]["within_0.01"] for p in points),
            "answers_agree": all(a["answers_agree"] for a in answers)}


def print_table(result: dict) -> None:
    typer.echo("| task | budget | point | fp32 | bf16 | bf16 − fp32 [90% over seeds] |")
    typer.echo("|---|---|---|---|---|---|")
    for p in result["points"]:
        d = p["bf16_minus_fp32"]
        mark = "" if d["within_0.01"] else " !"
        typer.echo(f"| {p['task']} | ${p['budget']:g} | {p['n_weak']}w+{p['n_gold']}g | {p['fp32']['accuracy']:.3f} | "
                   f"{p['bf16']['accuracy']:.3f} | {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]{mark} |")
    for a in result["answers"]:
        typer.echo(f"{a['task']} ${a['budget']:g}: fp32 picks {a['fp32_pick']}, bf16 picks {a['bf16_pick']}; "
                   f"agree: {a['answers_agree']} (same point: {a['same_point']}, ties: {a['tied_in_each_arm']})")


@app.command()
def main(
    task: Annotated[list[str], typer.Option(help="repeatable")] = ["word_sentiment", "cities"],  # noqa: B006
    budgets: Annotated[str, typer.Option()] = "64,256",
    shares: Annotated[str, typer.Option()] = "0,0.5,1",
    seeds: Annotated[str, typer.Option()] = "0,1,2,3,4",
    recipe: Annotated[str, typer.Option()] = Recipe.fast.value,
    processes: Annotated[int, typer.Option(help="worker processes, one torch thread each")] = 2,
    journal: Annotated[Path, typer.Option(help="finished trials, one JSON line each; reread on a rerun")] = Path(
        ".bench/precision-parity.jsonl"),
    json_out: Annotated[Path | None, typer.Option("--json")] = None,
    train: Annotated[bool, typer.Option(help="--no-train: report the journal's complete points only")] = True,
) -> None:
    _one_thread()
    jobs = plan_jobs(task, [float(b) for b in budgets.split(",")], [float(s) for s in shares.split(",")],
                     [int(s) for s in seeds.split(",")], recipe)
    rows = run_jobs(jobs, journal, processes) if train else complete_points(jobs, journaled(journal))
    result = report(rows)
    result["complete"] = len(rows) == len(jobs)
    # A budget answers only when all its points are in: a pick among some of them says nothing.
    planned = Counter((j["task"], j["budget"]) for j in jobs)
    held = Counter((r["task"], r["budget"]) for r in rows)
    result["answers"] = [a for a in result["answers"] if held[(a["task"], a["budget"])] == planned[(a["task"], a["budget"])]]
    result["answers_agree"] = all(a["answers_agree"] for a in result["answers"])
    print_table(result)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    app()
