"""Grid studies: the paper's grid for a task (budgets x weak shares x methods x seeds) as stored trials.

A study asks the trial cache for one trial per feasible point and seed, so a rerun (or another
study that shares points) trains nothing twice. Its plan (each point's label counts and trial ids)
is fixed when it is created; the table, winners and stage diagnostics are computed from the trials
whenever it is read, so they follow the trials as they finish and nothing needs waking.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections import Counter
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.allocations.search import Point, SearchSpace
from app.db.models import ACTIVE_TRIAL_STATUSES, GridStudy, Task, Trial, TrialStatus
from app.errors import NotFoundError, RequestError
from app.results.points import split
from app.stats.intervals import Scores, SeedVariance, compare, interval, seed_prior, stack_records
from app.studies.schemas import StudyRequest
from app.tasks.registry import buyable, concrete_labeler, get_or_register_task, majority_rate
from app.trials import cache as trial_cache
from worker.engine.budget import AllocationError, plan_labels
from worker.engine.metrics import unpack_correct
from worker.engine.models import ModelSpecError, resolve_model
from worker.engine.spec import CAUSAL_ONLY_METHODS, Method, MethodParams, StageRule, TrialSpec, recipe_params

# One request must not hold the workers for weeks: the paper's grid (6 budgets x 5 shares x 3 seeds)
# is 90 trials a method.
MAX_TRIALS = 2000
STATUSES = tuple(TrialStatus)


# --- creating a study ----------------------------------------------------------------------------


def _space(request: StudyRequest, budget: float, pool_size: int, params: MethodParams) -> SearchSpace:
    return SearchSpace(
        methods=tuple(request.methods),
        budget=budget,
        weak_cost=request.weak_cost,
        gold_cost=request.gold_cost,
        pool_size=pool_size,
        model=request.model,
        params=params,
        recipe=request.recipe,
    )


def _skip_reason(space: SearchSpace, method, share: float) -> str:
    """Why point_for refused: the engine's own message for the counts the share buys."""
    n_weak = math.floor(share * space.budget / space.weak_cost + 1e-9)
    n_gold = math.floor((1 - share) * space.budget / space.gold_cost + 1e-9)
    bought = f"{n_weak} weak + {n_gold} gold labels"
    try:
        plan_labels(space.spec(Point(method, n_weak, n_gold), seed=0))
    except AllocationError as exc:
        return f"{bought}: {exc}"
    return f"{bought}: too few for {method.value} once stages under the minimum are dropped"


def plan(request: StudyRequest, pool_size: int, params: MethodParams) -> tuple[list[dict], list[dict]]:
    """The grid's feasible points (label counts per budget, share and method) and the skipped ones."""
    points, skipped = [], []
    for budget in request.budgets:
        space = _space(request, budget, pool_size, params)
        for method in request.methods:
            for share in request.weak_shares:
                # icl: as many shots as the budget buys, up to the recipe's cap.
                point = space.point_for(method, share, icl_shots=params.icl_max_shots)
                where = {"budget": budget, "weak_share": share, "method": method.value}
                if point is None:
                    skipped.append({**where, "reason": _skip_reason(space, method, share)})
                else:
                    points.append({**where, "n_weak": point.n_weak, "n_gold": point.n_gold})
    return points, skipped


def _validate(session: Session, request: StudyRequest, team: str | None = None) -> Task:
    try:
        is_causal = resolve_model(request.model, convert=False).is_causal
    except ModelSpecError as exc:
        raise RequestError("model", str(exc)) from None
    needs_causal = [m.value for m in request.methods if m in CAUSAL_ONLY_METHODS]
    if needs_causal and not is_causal:
        raise RequestError(
            "methods", f"{', '.join(needs_causal)} needs a causal LM; {request.model!r} is an encoder"
        )
    try:
        return get_or_register_task(session, request.task, team)
    except NotFoundError as exc:
        raise RequestError("task", exc.message) from None


def create(session: Session, request: StudyRequest, team: str | None = None,
           check_work: Callable[[int], None] | None = None) -> tuple[GridStudy, list[int]]:
    """Store the study and its trials (existing ones reused); return it and the trial ids to enqueue.

    `check_work(n)` is called with the number of trials the study would add to the queue (new ones,
    and stored ones still queued or running), before any row is written: a study refused for its
    quota stores nothing (it used to insert its ~1,300 trials first and roll them back).
    """
    task = _validate(session, request, team)
    request = request.model_copy(update={"weak_labeler": concrete_labeler(task, request.weak_labeler)})
    params = recipe_params(request.recipe, request.params)
    points, skipped = plan(request, buyable(task, request.weak_labeler), params)
    if not points:
        raise RequestError("budgets", f"no point of the grid can train: {skipped[0]['reason']}")
    # Shares that land on the same label counts share their trials: count what would train.
    n_trials = len({(p["method"], p["n_weak"], p["n_gold"]) for p in points}) * len(request.seeds)
    if n_trials > MAX_TRIALS:
        raise RequestError(
            "seeds", f"the grid has {n_trials} trials, over the limit of {MAX_TRIALS}: ask for fewer "
            "budgets, shares, methods or seeds"
        )

    # A trial's spec does not depend on the budget: one space makes every point's specs.
    space = _space(request, request.budgets[0], buyable(task, request.weak_labeler), params)
    specs: dict[tuple, TrialSpec] = {}  # shares that land on the same counts share trials
    placed: list[tuple[dict, tuple]] = []  # each point's trial per seed, in the order the study lists them
    # Seed by seed, so a study read halfway has every point once before it has any twice.
    for seed in request.seeds:
        for point in points:
            counts = (point["method"], point["n_weak"], point["n_gold"], seed)
            if counts not in specs:
                specs[counts] = space.spec(Point(Method(point["method"]), point["n_weak"], point["n_gold"]), seed,
                                           task=task.name, weak_labeler=request.weak_labeler)
            placed.append((point, counts))
    if check_work is not None:
        check_work(_work_to_queue(session, [spec.key() for spec in specs.values()]))

    trial_ids: dict[tuple, int] = {}
    to_run: list[int] = []
    for counts, spec in specs.items():  # in first-placed order, as before
        trial = trial_cache.get_or_create_trial(session, task, spec)
        trial_ids[counts] = trial.id
        if trial.status == TrialStatus.queued:
            to_run.append(trial.id)
    for point, counts in placed:
        point.setdefault("trial_ids", []).append(trial_ids[counts])

    study = GridStudy(
        id=str(uuid.uuid4()),
        task_id=task.id,
        team=team or "local",
        request=request.model_dump(mode="json"),
        points={"points": points, "skipped": skipped},
    )
    session.add(study)
    session.flush()
    return study, to_run


def _work_to_queue(session: Session, keys: list[str]) -> int:
    """Of these trial keys, how many are not stored yet or stored queued or running."""
    stored: dict[str, str] = {}
    for start in range(0, len(keys), 500):  # bounded IN lists (a study has up to MAX_TRIALS)
        rows = session.execute(select(Trial.key, Trial.status).where(Trial.key.in_(keys[start : start + 500])))
        stored.update((key, status) for key, status in rows)
    return sum(1 for key in keys if key not in stored or stored[key] in ACTIVE_TRIAL_STATUSES)


# --- reading a study -----------------------------------------------------------------------------


def _trial_rows(session: Session, ids: list[int]) -> dict[int, dict]:
    # Only the columns the table needs: decoding every trial's whole result would dominate a poll.
    query = select(
        Trial.id,
        Trial.status,
        Trial.test_accuracy,
        Trial.test_auroc,
        Trial.result["predicted_positive_rate"].label("rate"),
        Trial.result["stages"].label("stages"),
        Trial.result["n_test"].label("n_test"),
        Trial.result["test_correct"].label("correct"),
        Trial.result["learned"].as_boolean().label("learned"),
    ).where(Trial.id.in_(ids))
    return {row.id: row._asdict() for row in session.execute(query)}


def _counts(statuses: list[str]) -> dict:
    counted = Counter(statuses)
    return {"total": len(statuses), **{s.value: counted.get(s.value, 0) for s in STATUSES}}


def _status(counts: dict) -> str:
    if counts["queued"] + counts["running"] == 0:
        return "failed" if counts["total"] and counts["failed"] == counts["total"] else "done"
    return "running" if counts["running"] + counts["done"] + counts["failed"] else "queued"


def _stages(done: list[dict]) -> dict:
    by_name: dict[str, dict] = {}
    for trial in done:
        for stage in trial["stages"] or []:
            entry = by_name.setdefault(stage["name"], {"rules": [], "best_steps": [], "steps": []})
            entry["rules"].append(stage.get("rule", StageRule.early_stopping))
            entry["best_steps"].append(stage["best_step"])
            entry["steps"].append(stage["steps"])
    return {
        name: {"rule": "/".join(dict.fromkeys(e["rules"])), "best_steps": e["best_steps"], "steps": e["steps"]}
        for name, e in by_name.items()
    }


def _done(point: dict, trials: dict[int, dict]) -> list[dict]:
    mine = [trials[i] for i in point["trial_ids"] if i in trials]
    return [t for t in mine if t["status"] == TrialStatus.done and t["test_accuracy"] is not None]


def _scores(done: list[dict]) -> Scores:
    """The point's per-seed accuracies and, when every trial recorded it, per-example correctness."""
    n_tests = [t["n_test"] for t in done]
    records = [unpack_correct(t["correct"], t["n_test"]) if t["correct"] and t["n_test"] else None for t in done]
    return Scores([t["test_accuracy"] for t in done], min(set(n_tests) - {None}, default=0),
                  stack_records(records, n_tests))


def _row(point: dict, trials: dict[int, dict], request: dict, lent: SeedVariance | None = None) -> dict:
    mine = [trials[i] for i in point["trial_ids"] if i in trials]
    done = _done(point, trials)
    spend_weak = point["n_weak"] * request["weak_cost"]
    cost = spend_weak + point["n_gold"] * request["gold_cost"]
    row = {
        **{k: point[k] for k in ("budget", "weak_share", "method", "n_weak", "n_gold", "trial_ids")},
        "cost": round(cost, 6),
        "weak_share_of_spend": round(spend_weak / cost, 4) if cost else 0.0,
        "seeds_done": len(done),
        # Done seeds that learned nothing (engine TrialResult.learned; unknown for trials stored before).
        "seeds_failed": sum(t["learned"] is False for t in done),
        # Trials that ended in an error: no seed at all.
        "seeds_errored": sum(t["status"] == TrialStatus.failed for t in mine),
        "stages": _stages(done),
    }
    if done:
        accuracies, scores = [t["test_accuracy"] for t in done], _scores(done)
        rates = [t["rate"] for t in done if t["rate"] is not None]
        aurocs = [t["test_auroc"] for t in done if t["test_auroc"] is not None]
        row |= {
            "accuracy": round(statistics.fmean(accuracies), 4),
            "accuracy_sd": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else 0.0,
            "accuracy_min": min(accuracies),
            "accuracy_max": max(accuracies),
            "auroc": round(statistics.fmean(aurocs), 4) if aurocs else None,
            "predicted_positive_rate": round(statistics.fmean(rates), 4) if rates else None,
            "seeds_split": split(accuracies, [t["learned"] for t in done], scores.n_test),
            "interval": interval(scores, borrowed=lent).as_dict(),
        }
    return row


def regime(row: dict) -> str:
    if row["n_weak"] == 0:
        return "all-gold"
    return "all-weak" if row["n_gold"] == 0 else "mixed"


def _contender(row: dict) -> dict:
    keys = ("method", "weak_share", "n_weak", "n_gold", "accuracy", "accuracy_sd", "interval", "seeds_done")
    return {k: row[k] for k in keys}


def winners(rows: list[dict], budgets: list[float], scores: dict[tuple, Scores] | None = None) -> list[dict]:
    """Per budget: the best point by mean test accuracy and the runner-up among the other points.

    With the points' scores, the gap carries its paired interval and says whether it is a tie.
    """
    out = []
    for budget in budgets:
        ranked, seen = [], set()
        for row in sorted((r for r in rows if r["budget"] == budget and r["seeds_done"]),
                          key=lambda r: r["accuracy"], reverse=True):
            counts = (row["method"], row["n_weak"], row["n_gold"])
            if counts not in seen:  # two shares on the same counts are one point, not a runner-up
                seen.add(counts)
                ranked.append(row)
        best = ranked[0] if ranked else None
        runner_up = ranked[1] if len(ranked) > 1 else None
        out.append({
            "budget": budget,
            "best": _contender(best) if best else None,
            "regime": regime(best) if best else None,
            "runner_up": _contender(runner_up) if runner_up else None,
            "gap": round(best["accuracy"] - runner_up["accuracy"], 4) if runner_up else None,
            "gap_interval": compare(scores[_counts_of(best)], scores[_counts_of(runner_up)]).as_dict()
            if runner_up and scores else None,
        })
    return out


def _counts_of(row: dict) -> tuple:
    return (row["method"], row["n_weak"], row["n_gold"])


def stage_summary(done: list[dict], params: MethodParams) -> dict:
    """How the gold stages of the done trials chose their state: the start, a fixed schedule, or a step."""
    keys = ("gold_stages", "kept_start", "fixed_schedule", "at_first_evaluation", "past_first_evaluation")
    summary = Counter(dict.fromkeys(keys, 0))
    for trial in done:
        for stage in trial["stages"] or []:
            if stage["name"] != "gold":
                continue
            summary["gold_stages"] += 1
            if stage.get("rule") == StageRule.fixed_schedule:
                summary["fixed_schedule"] += 1
            elif stage["best_step"] == 0:
                summary["kept_start"] += 1
            else:
                # The loop's first evaluation: eval_every capped at one epoch (training.loop.Schedule).
                per_epoch = math.ceil(stage["n_train"] / params.batch_size)
                first = min(params.eval_every, per_epoch, stage["steps"])
                summary["at_first_evaluation" if stage["best_step"] <= first else "past_first_evaluation"] += 1
    return dict(summary)


def _ids(study: GridStudy) -> list[int]:
    return sorted({i for p in study.points["points"] for i in p["trial_ids"]})


def describe(session: Session, study: GridStudy) -> dict:
    """The study as the API returns it: status, the table, winners and stage diagnostics."""
    trials = _trial_rows(session, _ids(study))
    request = study.request
    scores = {_counts_of(p): _scores(d) for p in study.points["points"] if (d := _done(p, trials))}
    # One recipe per study: its points' seed variances make the prior each point's interval uses.
    lent = seed_prior(list(scores.values()))
    rows = [_row(p, trials, request, lent) for p in study.points["points"]]
    done = [t for t in trials.values() if t["status"] == TrialStatus.done]
    counts = _counts([t["status"] for t in trials.values()])
    return {
        "id": study.id,
        "task": study.task.shown_name,
        "created_at": study.created_at,
        "status": _status(counts),
        "trials": counts,
        "request": request,
        "points": rows,
        "skipped": study.points["skipped"],
        "winners": winners(rows, request["budgets"], scores),
        "stage_summary": stage_summary(done, recipe_params(request["recipe"], request["params"])),
        "majority_rate": majority_rate(study.task),
    }


def summarize(session: Session, study: GridStudy) -> dict:
    """Status and trial counts only: for listing studies without reading their trials' results."""
    ids = _ids(study)
    statuses = dict(session.execute(
        select(Trial.status, func.count()).where(Trial.id.in_(ids)).group_by(Trial.status)
    ).all())
    counts = {"total": len(ids), **{s.value: statuses.get(s.value, 0) for s in STATUSES}}
    return {
        "id": study.id, "task": study.task.shown_name, "created_at": study.created_at,
        "status": _status(counts), "trials": counts, "request": study.request,
    }


def recent(session: Session, limit: int, team: str | None = None) -> list[GridStudy]:
    query = select(GridStudy).order_by(GridStudy.created_at.desc()).limit(limit)
    if team is not None:
        query = query.where(GridStudy.team == team)
    return list(session.scalars(query))



def queued_trials(session: Session) -> list[int]:
    """Queued trials of any study: an embedded service restarted mid-study sends them again."""
    plans = session.scalars(select(GridStudy.points))
    ids = {i for stored in plans for point in stored["points"] for i in point["trial_ids"]}
    if not ids:
        return []
    return list(session.scalars(select(Trial.id).where(Trial.id.in_(ids), Trial.status == TrialStatus.queued)))
