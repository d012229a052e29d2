"""One allocation's trials run cold (today's engine) and warm (resident model, weak-stage reuse,
grouped training, merged-adapter scoring), side by side: throughput, and whether the answer changes.

    python -m bench.engine.allocation --task cities --points 8 --seeds 2

The points are the service's opening grid (SearchSpace.first_grid) for the budget and costs. Each
arm runs in its own process on an empty cache directory (settings are lru_cached per process and
the weak-stage store lives in the cache, so nothing can leak from one arm to the other), except for
the weak labels: they are built once beforehand, in the usual cache, and copied into both, so
labeler training is timed in neither. The arms take turns of a minute (--turn-s), one stopped while
the other runs, and each is timed by the time it ran (bench.engine.interleave): run one after the
other, a slow spell of the shared host fell on one arm and moved the ratio. The recommendation is
the service's own chooser (app.allocations.recommend) fed with in-memory trials; the best mean test
accuracy is reported too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from app.stats.prices import Prices
from bench.engine.interleave import ArmProcess, overlap_s, run_in_turns

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# What each arm sets; LABELMIX_CACHE_DIR is added per arm. The warm group size comes from --group-size.
COLD_ENV = {
    "LABELMIX_RESIDENT_MODELS": "0", "LABELMIX_REUSE_WEAK_STAGES": "false", "LABELMIX_TRIAL_GROUP_SIZE": "1",
    "LABELMIX_MERGED_INFERENCE": "false",
}
WARM_ENV = {"LABELMIX_RESIDENT_MODELS": "1", "LABELMIX_REUSE_WEAK_STAGES": "true", "LABELMIX_MERGED_INFERENCE": "true"}
# Echoed by each arm, so a report shows the settings its trials really ran under.
SETTINGS_SHOWN = ("resident_models", "reuse_weak_stages", "trial_group_size", "merged_inference", "torch_threads")
# What an arm of several worker processes gives each: one torch thread (or they slow each other).
ONE_THREAD_ENV = {"LABELMIX_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}


# --- inside an arm's process -----------------------------------------------------------------------


def run_specs(specs: list, processes: int = 1) -> list:
    """The trials' results in spec order, through the worker's entry point (groups, reuse, residency).

    With several `processes`, as a Celery prefork pool with --concurrency would run them: trials
    that share a weak stage form one job, run in order in one process (the later ones reuse the
    stage), and the jobs go, in spec order, to whichever process is free; each keeps its model
    resident between jobs.
    """
    return run_timed(specs, processes)[0]


def run_timed(specs: list, processes: int = 1) -> tuple[list, list[float]]:
    """run_specs's results, and when each trial started (time.monotonic, as any process on the host
    reads it): its job's start plus the seconds of the job's trials before it."""
    if processes <= 1:
        started, results = _job(specs)
        return results, _trial_starts(started, results)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from worker.engine.weak_stages import weak_prefix

    jobs: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        jobs.setdefault(weak_prefix(spec) or ("alone", i), []).append(i)
    results: list = [None] * len(specs)
    starts: list[float] = [0.0] * len(specs)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [(rows, pool.submit(_job, [specs[i] for i in rows])) for rows in jobs.values()]
        for rows, future in futures:
            started, job_results = future.result()
            for i, result, start in zip(rows, job_results, _trial_starts(started, job_results)):
                results[i], starts[i] = result, start
    return results, starts


def _job(specs: list) -> tuple[float, list]:
    """One job's results and when it started (a worker process's unit of work, so module-level)."""
    from worker.engine.group import run_trials

    started = time.monotonic()
    return started, run_trials(specs)


def _trial_starts(job_started: float, results: list) -> list[float]:
    starts, at = [], job_started
    for result in results:
        starts.append(at)
        at += result.wall_s
    return starts


@app.command("prepare", hidden=True)
def prepare(task: str, labeler: str, model: str) -> None:
    """Build (or find) the weak labels in the current cache; print what the parent needs as JSON."""
    from worker.engine.models import resolve_model
    from worker.engine.settings import engine_settings
    from worker.engine.tasks import get_task
    from worker.engine.weak_labels import weak_labels

    engine_task = get_task(task)
    labels = weak_labels(engine_task, labeler)
    positive = float(engine_task.test.labels.mean())
    print(json.dumps({
        "cache_dir": str(engine_settings().cache_dir),
        "labeler": labels.labeler,  # spelled out, as the service stores it in trial keys
        "pool_size": len(labels.pool),  # what trials can buy: the labeler's examples are gone
        "weak_label_accuracy": labels.accuracy,
        "labeler_build_s": labels.build_s,
        "majority_rate": max(positive, 1 - positive),
        "model_is_causal": resolve_model(model).is_causal,
    }))


@app.command("run-arm", hidden=True)
def run_arm(specs_file: Path, processes: int = 1) -> None:
    """Run the specs in FILE with this process's settings; print the trials as one JSON line."""
    from worker.engine.settings import engine_settings
    from worker.engine.spec import TrialSpec

    specs = [TrialSpec(**s) for s in json.loads(specs_file.read_text())]
    started = time.monotonic()
    results, trial_starts = run_timed(specs, processes)
    finished = time.monotonic()
    settings = engine_settings()
    print(json.dumps({
        "settings": {**{k: getattr(settings, k, None) for k in SETTINGS_SHOWN}, "processes": processes},
        "device": results[0].device if results else None,
        "wall_s": finished - started,
        "run_window": [started, finished],  # monotonic: an interleaved run takes its stopped time out
        "trials": [{
            "key": r.key, "method": r.spec.method.value, "n_weak": r.spec.n_weak, "n_gold": r.spec.n_gold,
            "seed": r.spec.seed, "test_accuracy": r.test_accuracy, "selection_accuracy": r.selection_accuracy,
            "holdout_accuracy": r.holdout_accuracy, "n_test": r.n_test, "test_correct": r.test_correct,
            "weak_label_accuracy": r.weak_label_accuracy, "wall_s": r.wall_s,
            "reused": any(st.reused for st in r.stages), "pool_scores_reused": r.pool_scores_reused,
            # Where the time went: what a warm trial skipped is read off its cold twin's.
            "stage_s": {st.name: st.wall_s for st in r.stages}, "pool_scoring_s": r.pool_scoring_s,
            "started_at": start,
        } for r, start in zip(results, trial_starts)],
    }))


# --- pure helpers (tested without training) --------------------------------------------------------


def point_of(trial: dict) -> tuple[str, int, int]:
    return trial["method"], trial["n_weak"], trial["n_gold"]


def best_mean(trials: list[dict], weak_cost: float, gold_cost: float) -> dict:
    """The point with the highest mean test accuracy over seeds; a tie goes to the cheaper point."""
    prices = Prices(weak_cost, gold_cost)
    by_point: dict[tuple, list[float]] = {}
    for t in trials:
        by_point.setdefault(point_of(t), []).append(t["test_accuracy"])
    method, n_weak, n_gold = max(
        by_point, key=lambda p: (sum(by_point[p]) / len(by_point[p]), -prices.cost(p[1], p[2]))
    )
    accs = by_point[(method, n_weak, n_gold)]
    return {"method": method, "n_weak": n_weak, "n_gold": n_gold, "accuracy": sum(accs) / len(accs)}


def same_point(a: dict | None, b: dict | None) -> bool | None:
    """Whether two answers name the same allocation (None when either is missing)."""
    if a is None or b is None:
        return None
    return (a["method"], a["n_weak"], a["n_gold"]) == (b["method"], b["n_weak"], b["n_gold"])


def answers_agree(a: dict | None, b: dict | None) -> bool | None:
    """Whether two recommendations give the same answer: the same point, or each arm's pick is among
    the points the other arm's service calls indistinguishable from its best (its best and ties).

    Float rounding (merged scoring, grouped training) can move a trial's accuracy by a few
    thousandths and swap the order of two points the service already reports as a tie; that is the
    same answer ("these cannot be told apart"), not a different one.
    """
    if a is None or b is None:
        return None
    if same_point(a, b):
        return True

    def contenders(rec: dict) -> list[dict]:
        return [rec["best"], *rec.get("ties", [])]

    return any(same_point(a, c) for c in contenders(b)) and any(same_point(b, c) for c in contenders(a))


def twin(trial: dict) -> tuple:
    """What a trial is in both arms: its point and seed (its key differs when the arms' precisions do)."""
    return point_of(trial), trial["seed"]


def accuracy_gap(cold: list[dict], warm: list[dict]) -> tuple[float | None, bool]:
    """Largest |test accuracy difference| of the same trial (point and seed) in both arms, and whether all match."""
    warm_by_twin = {twin(t): t["test_accuracy"] for t in warm}
    gaps = [abs(t["test_accuracy"] - warm_by_twin[twin(t)]) for t in cold if twin(t) in warm_by_twin]
    complete = len(gaps) == len(cold) == len(warm)
    return (max(gaps) if gaps else None), complete and all(g == 0 for g in gaps)


def skipped_seconds(cold: list[dict], warm: list[dict]) -> float:
    """Cold-arm seconds of the work the warm arm did not do: the weak stages it restored and the pool
    scorings it read back, each timed on the trial's cold twin (same point and seed)."""
    cold_twins = {twin(t): t for t in cold}
    skipped = 0.0
    for t in warm:
        cold_twin = cold_twins.get(twin(t))
        if cold_twin is None:
            continue
        if t["reused"]:
            skipped += cold_twin["stage_s"].get("weak", 0.0)
        if t.get("pool_scores_reused"):
            skipped += cold_twin.get("pool_scoring_s") or 0.0
    return skipped


def service_recommendation(trials: list[dict], specs: dict[str, dict], request: dict, majority_rate: float,
                           weak_label_accuracy: float | None) -> dict | None:
    """app.allocations.recommend's answer for these trials, from the columns of the Trial rows it reads.

    group_trials reads a trial's columns only (trial_records.TrialRecord), so no database is needed;
    None if the service cannot be imported here (the worker image need not carry it).
    """
    try:
        from app.allocations.recommend import recommendation
        from app.results.points import group_trials
        from app.trials import recipe_keys
        from app.trials.records import TrialRecord
    except ImportError:
        return None
    rows = []
    for i, t in enumerate(trials):
        spec = specs[t["key"]]
        rows.append(TrialRecord(
            id=i, model=spec["model"], method=t["method"], weak_labeler=spec["weak_labeler"], recipe=spec["recipe"],
            recipe_label=recipe_keys.label(spec["recipe"], spec["params"]),
            params_key=recipe_keys.params_key(spec["params"]), n_weak=t["n_weak"], n_gold=t["n_gold"],
            seed=t["seed"], selection_accuracy=t["selection_accuracy"], holdout_accuracy=t["holdout_accuracy"],
            test_accuracy=t["test_accuracy"], n_test=t["n_test"], test_correct=t["test_correct"],
        ))
    chosen = recommendation(group_trials(rows), request, majority_rate, weak_label_accuracy)
    answer = {k: chosen[k] for k in ("method", "n_weak", "n_gold", "cost", "expected_accuracy", "tie", "best")}
    answer["ties"] = [{k: t[k] for k in ("method", "n_weak", "n_gold", "accuracy")} for t in chosen["ties"]]
    return answer


# --- the benchmark ---------------------------------------------------------------------------------


def _subprocess_json(args: list[str], env: dict[str, str]) -> dict:
    """Run this module with `args`; the JSON on the last line of its stdout (stderr passes through)."""
    return _command_json(args[0], _module_command(args), env)


def _command_json(what: str, command: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    return _last_json(what, done.returncode, done.stdout)


def _arm_output(arm: ArmProcess, turn_s: float) -> dict:
    """An arm's run-arm output: read from its finished turns (its stopped time taken out), or, with
    turn_s 0, from running it now."""
    if turn_s > 0:
        out = _last_json("run-arm", arm.process.returncode, arm.output)
        out["process_s"] = sum(b - a for a, b in arm.turns)  # with interpreter start and imports
        take_out_stopped_time(out, arm.turns)
        return out
    started = time.perf_counter()
    out = _command_json("run-arm", arm.command, arm.env)
    out["process_s"] = time.perf_counter() - started
    return out


def _module_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "bench.engine.allocation", *args]


def _last_json(what: str, returncode: int, stdout: str) -> dict:
    if returncode != 0:
        raise RuntimeError(f"bench.engine.allocation {what} exited {returncode}:\n{stdout[-2000:]}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def _arm_cache(tmp: Path, prepared: dict, task: str, model: str) -> Path:
    """An empty cache directory but for what is built before any trial: the task's weak labels
    (and a converted GGUF model)."""
    cache = tmp / "cache"
    source = Path(prepared["cache_dir"])
    for sub in (Path("weak_labels") / task, Path("models") / model):
        if (source / sub).is_dir():
            shutil.copytree(source / sub, cache / sub)
    return cache


def _arm_process(tmp: Path, name: str, settings_env: dict[str, str], specs: list[dict], prepared: dict,
                 task: str, model: str, processes: int = 1) -> ArmProcess:
    """The arm's run-arm command, on its own cache in `tmp`, with its settings."""
    tmp.mkdir()
    cache = _arm_cache(tmp, prepared, task, model)
    specs_file = tmp / "specs.json"
    specs_file.write_text(json.dumps(specs))
    env = {**os.environ, **settings_env, "LABELMIX_CACHE_DIR": str(cache)}
    if processes > 1:
        env.update(ONE_THREAD_ENV)
    return ArmProcess(name, _module_command(["run-arm", str(specs_file), "--processes", str(processes)]), env)


def _run_arms(arms: list[ArmProcess], turn_s: float) -> list[dict]:
    """Each arm's run-arm output: in turns of `turn_s` seconds, or with turn_s 0 one arm after the other."""
    if turn_s > 0:
        run_in_turns(arms, turn_s)
    outs = []
    for arm in arms:
        out = _arm_output(arm, turn_s)
        trials = out["trials"]
        out.update(arm=arm.name, n_trials=len(trials), trials_per_hour=3600 * len(trials) / out["wall_s"],
                   reused_weak_stage=sum(t["reused"] for t in trials))
        outs.append(out)
    return outs


def take_out_stopped_time(out: dict, turns: list[tuple[float, float]]) -> None:
    """An arm's and its trials' seconds as the time they ran: the overlap of each one's monotonic
    window with the arm's turns; `elapsed_s` keeps the seconds with the stops in. A trial's stages
    and pool scoring keep its running share (where in the trial a stop fell is not recorded)."""
    out["turns"] = len(turns)
    out["elapsed_s"], out["wall_s"] = out["wall_s"], overlap_s(turns, *out["run_window"])
    for t in out["trials"]:
        elapsed = t["wall_s"]
        ran = overlap_s(turns, t["started_at"], t["started_at"] + elapsed)
        share = ran / elapsed if elapsed > 0 else 1.0
        t["elapsed_s"], t["wall_s"] = elapsed, ran
        t["stage_s"] = {stage: seconds * share for stage, seconds in t["stage_s"].items()}
        if t.get("pool_scoring_s"):
            t["pool_scoring_s"] *= share


def plan_specs(task: str, model: str, budget: float, weak_cost: float, gold_cost: float, points: int,
               seeds: int, max_steps: int | None, n_test: int | None, weak_labeler: str,
               recipe: str | None) -> tuple[dict, str, dict, list, list[dict]]:
    """The weak labels (built once, in the usual cache) and the trial specs of the opening grid."""
    from app.allocations.search import SearchSpace
    from worker.engine.spec import CAUSAL_ONLY_METHODS, DEFAULT_RECIPE, Method, recipe_params

    prepared = _subprocess_json(["prepare", task, weak_labeler, model], dict(os.environ))
    recipe = recipe or DEFAULT_RECIPE.value
    wanted = {"max_steps_per_stage": max_steps, "n_test": n_test}
    overrides = {k: v for k, v in wanted.items() if v is not None}
    methods = tuple(m for m in Method if prepared["model_is_causal"] or m not in CAUSAL_ONLY_METHODS)
    space = SearchSpace(methods=methods, budget=budget, weak_cost=weak_cost, gold_cost=gold_cost,
                        pool_size=prepared["pool_size"], model=model, params=recipe_params(recipe, overrides),
                        recipe=recipe)
    # As the service does (allocations.search_space): only methods the budget can pay for.
    space = replace(space, methods=tuple(m for m in methods if space.cheapest_cost(m) <= budget))
    grid = [space.point_for(Method(p["method"]), p["weak_share"], p.get("icl_shots"))
            for p in space.first_grid(points)]
    specs = [space.spec(p, seed, task=task, weak_labeler=prepared["labeler"])
             for p in grid for seed in range(seeds)]
    return prepared, recipe, overrides, grid, [s.model_dump(mode="json") for s in specs]


def with_precision(spec_dicts: list[dict], precision: str | None) -> list[dict]:
    """The specs trained in `precision` instead (None: as they are). The pre-bf16 engine is the cold
    arm issue 28 measures against: fp32, nothing resident, nothing reused."""
    if precision is None:
        return spec_dicts
    return [{**d, "params": {**d["params"], "precision": precision}} for d in spec_dicts]


def benchmark(task: str = "cities", model: str = "minilm-l6", budget: float = 256, weak_cost: float = 0.10,
              gold_cost: float = 1.0, points: int = 8, seeds: int = 2, group_size: int = 0,
              max_steps: int | None = None, n_test: int | None = None, weak_labeler: str = "default",
              recipe: str | None = None, warm_processes: int = 1, warm_merged: bool = True,
              cold_precision: str | None = None, turn_s: float = 60.0) -> dict:
    from worker.engine.spec import TrialSpec

    prepared, recipe, overrides, grid, spec_dicts = plan_specs(
        task, model, budget, weak_cost, gold_cost, points, seeds, max_steps, n_test, weak_labeler, recipe)
    cold_specs = with_precision(spec_dicts, cold_precision)
    by_key = {TrialSpec(**d).key(): d for d in spec_dicts + cold_specs}

    warm_env = {**WARM_ENV, "LABELMIX_TRIAL_GROUP_SIZE": str(group_size),
                "LABELMIX_MERGED_INFERENCE": str(warm_merged).lower()}
    with tempfile.TemporaryDirectory(prefix="labelmix-bench-") as tmp:
        cold, warm = _run_arms([
            _arm_process(Path(tmp) / "cold", "cold", COLD_ENV, cold_specs, prepared, task, model),
            _arm_process(Path(tmp) / "warm", "warm", warm_env, spec_dicts, prepared, task, model,
                         warm_processes),
        ], turn_s)
    request = {"budget": budget, "weak_cost": weak_cost, "gold_cost": gold_cost}
    for arm in (cold, warm):
        arm["best_mean"] = best_mean(arm["trials"], weak_cost, gold_cost)
        arm["recommendation"] = service_recommendation(
            arm["trials"], by_key, request, prepared["majority_rate"], prepared["weak_label_accuracy"])
    gap, identical = accuracy_gap(cold["trials"], warm["trials"])
    # What skipping alone could buy: the cold arm with the skipped work taken out and nothing else
    # faster. The rest of a speedup has to come from doing the same arithmetic faster.
    skipped = skipped_seconds(cold["trials"], warm["trials"])
    return {
        "task": task, "model": model, "budget": budget, "weak_cost": weak_cost, "gold_cost": gold_cost,
        "recipe": recipe, "overrides": overrides, "weak_labeler": prepared["labeler"],
        "precision": {"cold": cold_specs[0]["params"]["precision"], "warm": spec_dicts[0]["params"]["precision"]},
        "labeler_build_s": prepared["labeler_build_s"], "seeds": list(range(seeds)),
        "turn_s": turn_s,  # 0: one arm after the other
        "points": [[p.method.value, p.n_weak, p.n_gold] for p in grid],
        "cold": {k: v for k, v in cold.items() if k != "trials"},
        "warm": {k: v for k, v in warm.items() if k != "trials"},
        "trials": [{"key": c["key"], "point": point_of(c), "seed": c["seed"], "cold": c["test_accuracy"],
                    "warm": w["test_accuracy"], "cold_s": c["wall_s"], "warm_s": w["wall_s"],
                    "reused": w["reused"]}
                   for c, w in zip(cold["trials"], warm["trials"])],
        "speedup": warm["trials_per_hour"] / cold["trials_per_hour"],
        "skipped_cold_s": skipped,
        "skip_ceiling": cold["wall_s"] / (cold["wall_s"] - skipped),
        "best_mean_agree": same_point(cold["best_mean"], warm["best_mean"]),
        "recommendation_agree": same_point(cold["recommendation"], warm["recommendation"]),
        "answers_agree": answers_agree(cold["recommendation"], warm["recommendation"]),
        "max_test_accuracy_diff": gap,
        "test_accuracy_identical": identical,
    }


def _report(r: dict) -> None:
    print(f"{r['task']} / {r['model']} / budget {r['budget']:g} (weak {r['weak_cost']:g}, "
          f"gold {r['gold_cost']:g}), {len(r['points'])} points x {len(r['seeds'])} seeds, "
          f"weak labels {r['weak_labeler']}, {r['cold']['device']}; cold in {r['precision']['cold']}, "
          f"warm in {r['precision']['warm']}")
    turn_s = r.get("turn_s", 0)
    print("  arms run " + (f"in turns of {turn_s:g} s (seconds below: the time each ran)" if turn_s
                           else "one after the other"))
    for name in ("cold", "warm"):
        a = r[name]
        rec, best = a["recommendation"], a["best_mean"]
        rec_text = "-" if rec is None else f"{rec['method']} ({rec['n_weak']} weak, {rec['n_gold']} gold)"
        print(f"  {name:4}: {a['n_trials']} trials in {a['wall_s']:.1f} s ({a['trials_per_hour']:.0f}/h), "
              f"{a['reused_weak_stage']} reused a weak stage; {a['settings']}")
        print(f"        best mean {best['method']} ({best['n_weak']} weak, {best['n_gold']} gold) "
              f"{best['accuracy']:.3f}; recommended {rec_text}")
    print(f"  the warm arm skipped {r['skipped_cold_s']:.1f} s of the cold arm's work (restored weak stages, "
          f"pool scores read back): {r['skip_ceiling']:.2f}x if nothing else were faster")
    print(f"  warm / cold trials per hour: {r['speedup']:.2f}x; best mean agrees: {r['best_mean_agree']}, "
          f"recommendation agrees: {r['recommendation_agree']} (within the service's ties: {r['answers_agree']}); "
          f"test accuracy identical: "
          f"{r['test_accuracy_identical']} (largest difference {r['max_test_accuracy_diff']})")


@app.command("profile")
def profile(
    task: str = "cities",
    model: str = "minilm-l6",
    budget: float = 256,
    weak_cost: float = 0.10,
    gold_cost: float = 1.0,
    points: int = 8,
    seeds: int = 2,
    max_steps: Annotated[int | None, typer.Option(help="max_steps_per_stage override (quick runs)")] = None,
    n_test: Annotated[int | None, typer.Option(help="score on the first n test examples")] = None,
    weak_labeler: str = "default",
    top: Annotated[int, typer.Option(help="functions shown, by cumulative time")] = 30,
    output: Annotated[Path | None, typer.Option(help="also write the pstats file here")] = None,
) -> None:
    """The warm arm in this process under cProfile: where a resident, reusing, grouped run spends its time."""
    import cProfile
    import pstats

    from worker.engine.settings import engine_settings
    from worker.engine.spec import TrialSpec

    prepared, *_, spec_dicts = plan_specs(task, model, budget, weak_cost, gold_cost, points, seeds, max_steps,
                                         n_test, weak_labeler, None)
    with tempfile.TemporaryDirectory(prefix="labelmix-bench-profile-") as tmp:
        os.environ.update(WARM_ENV, LABELMIX_CACHE_DIR=str(_arm_cache(Path(tmp), prepared, task, model)))
        engine_settings.cache_clear()
        specs = [TrialSpec(**d) for d in spec_dicts]
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(run_specs, specs)
        print(f"{len(specs)} trials in {time.perf_counter() - started:.1f} s under the profiler")
    if output:
        profiler.dump_stats(output)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    task: str = "cities",
    model: str = "minilm-l6",
    budget: float = 256,
    weak_cost: float = 0.10,
    gold_cost: float = 1.0,
    points: Annotated[int, typer.Option(help="points of the opening grid")] = 8,
    seeds: Annotated[int, typer.Option(help="seeds 0..n-1 per point")] = 2,
    group_size: Annotated[int, typer.Option(help="warm arm's LABELMIX_TRIAL_GROUP_SIZE (0: by device)")] = 0,
    max_steps: Annotated[int | None, typer.Option(help="max_steps_per_stage override (quick runs)")] = None,
    n_test: Annotated[int | None, typer.Option(help="score on the first n test examples")] = None,
    weak_labeler: Annotated[str, typer.Option(help="bow: built in seconds")] = "default",
    recipe: Annotated[str | None, typer.Option(help="training recipe (default: the engine's)")] = None,
    warm_processes: Annotated[int, typer.Option(min=1, help="worker processes of the warm arm, one torch thread "
                                                            "each (a CPU host: one per core)")] = 1,
    warm_merged: Annotated[bool, typer.Option(help="warm arm scores with adapters merged (off: its results "
                                                   "equal the cold arm's bit for bit on the CPU)")] = True,
    cold_precision: Annotated[str | None, typer.Option(help="cold arm trains in this precision (fp32: the "
                                                           "engine before bf16); default: the specs' own")] = None,
    turn_s: Annotated[float, typer.Option(min=0, help="the arms take turns of this many seconds, one "
                                                      "stopped while the other runs, so a slow spell of the "
                                                      "host falls on both; 0: one arm after the other")] = 60.0,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    result = benchmark(task, model, budget, weak_cost, gold_cost, points, seeds, group_size, max_steps,
                       n_test, weak_labeler, recipe, warm_processes, warm_merged, cold_precision, turn_s)
    _report(result)
    print(json.dumps(result))  # one line, for scripts


if __name__ == "__main__":
    app()
