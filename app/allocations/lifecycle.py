"""Allocations: an Optuna study over method x weak share, advanced as trials finish.

The study opens with a few fixed points and then asks where the learning surface expects the most
improvement (surface_sampler; how it compares with the first version's corners-then-TPE in replays of
real trials is in docs/bench/search-replays.md).

`advance` is the only place a study moves. It reports finished points to Optuna (tell), asks for
new ones while the allocation has room (ask), links each point to its trials in the cache (a
stored trial is never trained again), and finishes the allocation when every point is told.
It never waits: it returns the trials that need a worker, for the caller to enqueue after commit.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import replace

import optuna
from sqlalchemy import Select, event, select
from sqlalchemy.orm import Session, joinedload, selectinload

from app.allocations import study_labels, unstable_leader, webhooks
from app.allocations import verdict as search_verdict
from app.allocations.recommend import recommendation
from app.allocations.sampler import SurfaceSampler, opening_params
from app.allocations.schemas.allocations import AllocationOut, AllocationRequest, CallbackOut
from app.allocations.search import Point, SearchSpace, optuna_storage
from app.allocations.strategies import MIN_SURFACE_POINTS
from app.config import get_settings
from app.db.models import Allocation, AllocationStatus, StudyPoint, StudyPointTrial, Task, Trial, TrialStatus
from app.errors import RequestError
from app.results import stored_plans
from app.results.points import group_trials
from app.tasks.registry import buyable, concrete_labeler, majority_rate
from app.trials import cache as trial_cache
from app.trials import progress as trial_progress
from app.trials.schemas import TrialOut
from worker.engine.spec import Method, Recipe, recipe_params

log = logging.getLogger(__name__)

# An asked point the methods cannot train on is told FAIL and asked again, up to this many times.
MAX_ASKS_PER_POINT = 5
ENCODER_METHODS = (Method.seq_sft, Method.prompted_sft, Method.uncertainty_sft, Method.logconf_sft)
# Request fields kept out of the stored request (and so out of its request_key and study seed).
NOT_ASKED = {"budgets", "label", "callback_url"}
# session.info key: the Optuna studies this session's open transaction created.
_NEW_STUDIES = "labelmix.new_optuna_studies"


def _study_seed(allocation: Allocation) -> int:
    """The search's seed, from what was asked (not from the allocation's fresh id): an identical
    request proposes the same points, so stored trials answer it at once instead of training again."""
    return zlib.crc32(json.dumps(allocation.request, sort_keys=True, separators=(",", ":")).encode())


def search_space(task: Task, request: AllocationRequest, model_is_causal: bool) -> SearchSpace:
    methods = request.methods or [*ENCODER_METHODS, *([Method.icl] if model_is_causal else [])]
    space = _space(request.model_dump(), methods, buyable(task, request.weak_labeler))
    if Method.icl in space.methods and not model_is_causal:
        raise RequestError("methods", f"icl needs a causal LM; model {request.model!r} is an encoder")
    affordable = tuple(m for m in space.methods if space.cheapest_cost(m) <= request.budget)
    if not affordable or (request.methods and len(affordable) < len(space.methods)):
        short = [m.value for m in space.methods if m not in affordable]
        cheapest = min(space.cheapest_cost(m) for m in space.methods)
        raise RequestError(
            "budget",
            f"{request.budget:g} is too small for {', '.join(short)}: the fewest labels it can train on "
            f"cost {cheapest:g} at weak_cost={request.weak_cost:g}, gold_cost={request.gold_cost:g}",
        )
    return replace(space, methods=affordable)


def _space(request: Mapping, methods, pool_size: int) -> SearchSpace:
    """The search space of a request, as the API validated it or as an allocation stored it.

    A stored request is not validated again: an allocation accepted under the limits of its day
    (the operator may lower one, or take a model off the allow-list) still advances to its end.
    Requests stored before recipes existed trained on the paper's params plus their overrides.
    """
    recipe = Recipe(request.get("recipe") or Recipe.paper)
    return SearchSpace(
        methods=tuple(Method(m) for m in methods),
        budget=request["budget"],
        weak_cost=request["weak_cost"],
        gold_cost=request["gold_cost"],
        pool_size=pool_size,
        model=request["model"],
        params=recipe_params(recipe, request["params"]),
        recipe=recipe,
    )


def prepare(task: Task, request: AllocationRequest, model_is_causal: bool) -> tuple[AllocationRequest, SearchSpace]:
    """The request with its weak labeler spelled out, and its search space; RequestError when it cannot run."""
    labeler = concrete_labeler(task, request.weak_labeler)
    request = request.model_copy(update={"weak_labeler": labeler})
    return request, search_space(task, request, model_is_causal)


def create(
    session: Session, task: Task, request: AllocationRequest, model_is_causal: bool, sweep_id: str | None = None
) -> Allocation:
    """A queued allocation for the request's one `budget` (a sweep makes one per budget, sharing `sweep_id`)."""
    request, space = prepare(task, request, model_is_causal)
    first_points = opening_params(space, request.max_trials)  # before the study: nothing below may fail on the request
    allocation_id = str(uuid.uuid4())
    allocation = Allocation(
        id=allocation_id,
        task_id=task.id,
        # The stored request is always a single budget's: `budgets` belongs to the sweep.
        # stop_when_confident only when true (the default, docs/bench/search-replays.md): a request stored before
        # the field existed, or with it off, keeps its key and study seed and reads as off.
        # label and callback_url are not what is asked: they live in columns of their own.
        request={**request.model_dump(mode="json", exclude=NOT_ASKED | ({"stop_when_confident"} if not
                                      request.stop_when_confident else set())),
                 "methods": [m.value for m in space.methods]},
        label=request.label,
        callback_url=str(request.callback_url) if request.callback_url else None,
        callback_state="pending" if request.callback_url else None,
        status=AllocationStatus.queued,
        study_name=study_labels.study_name(task.name, request.model, request.budget, allocation_id),
        sweep_id=sweep_id,
        points_total=request.max_trials,
    )
    allocation.request_key = stored_plans.request_key(task, allocation.request)
    allocation.task = task
    session.add(allocation)
    session.flush()
    if stored_plans.answer_from_store(session, allocation, space, first_points):
        _finish(allocation)  # its study is never created: nothing is left to search
        return allocation
    study = _create_study(session, allocation.study_name)
    study_labels.describe_study(study, task.name, allocation.id, allocation.request)
    for params in first_points:
        study.enqueue_trial(params)
    return allocation


def _create_study(session: Session, study_name: str) -> optuna.Study:
    """The allocation's Optuna study, deleted again if `session`'s transaction rolls back.

    Optuna commits the study on its own connection at once, outside the app's transaction: without
    this, a request that failed after this point (or whose commit failed) left an orphaned study.
    """
    study = optuna.create_study(
        study_name=study_name, storage=optuna_storage(get_settings().optuna_storage_url), direction="maximize"
    )
    if not event.contains(session, "after_rollback", _delete_new_studies):
        event.listen(session, "after_rollback", _delete_new_studies)
        event.listen(session, "after_commit", _keep_new_studies)
    session.info.setdefault(_NEW_STUDIES, []).append(study_name)
    return study


def _keep_new_studies(session: Session) -> None:
    session.info.pop(_NEW_STUDIES, None)


def _delete_new_studies(session: Session) -> None:
    storage = optuna_storage(get_settings().optuna_storage_url)
    for name in session.info.pop(_NEW_STUDIES, []):
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except Exception:  # a rollback must not fail, nor hide why it happened: leave the orphan, say so
            log.exception("could not delete Optuna study %s after its allocation rolled back", name)


def _space_of(allocation: Allocation) -> SearchSpace:
    """The space the allocation was created with (its methods narrowed to the affordable ones)."""
    request = allocation.request
    return _space(request, request["methods"], buyable(allocation.task, request["weak_labeler"]))


def _add_point(session: Session, allocation: Allocation, number: int, point: Point, space: SearchSpace) -> StudyPoint:
    request = allocation.request
    row = StudyPoint(
        allocation_id=allocation.id, number=number, method=point.method.value, n_weak=point.n_weak, n_gold=point.n_gold
    )
    for seed in request["seeds"]:
        spec = space.spec(point, seed, task=allocation.task.name, weak_labeler=request["weak_labeler"])
        row.trials.append(trial_cache.get_or_create_trial(session, allocation.task, spec))
    allocation.points.append(row)
    session.flush()
    return row


def _tell_finished(study: optuna.Study, point: StudyPoint, already_told: set[int]) -> bool:
    """Report a point whose trials have all finished; False while some still run."""
    statuses = {t.status for t in point.trials}
    if not statuses <= {TrialStatus.done, TrialStatus.failed}:
        return False
    if point.number in already_told:
        pass  # told by an earlier step whose own transaction then rolled back
    elif TrialStatus.failed in statuses:
        study.tell(point.number, state=optuna.trial.TrialState.FAIL)
    else:
        stats = group_trials(point.trials)[0]
        study.tell(point.number, stats.accuracy)  # what the recommendation chooses on (recommend.py)
    point.told = True
    return True


def advance(session: Session, allocation_id: str) -> list[int]:
    """Move the allocation's study as far as stored trials allow; return trial ids to enqueue."""
    query = select(Allocation).where(Allocation.id == allocation_id)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()  # one advance at a time per allocation
    allocation = session.scalars(query).one()
    if allocation.status in (AllocationStatus.done, AllocationStatus.failed):
        return []
    space = _space_of(allocation)
    storage = optuna_storage(get_settings().optuna_storage_url)
    seed = _study_seed(allocation)
    study = optuna.load_study(study_name=allocation.study_name, storage=storage)
    study.sampler = SurfaceSampler(space, seed + len(study.trials))  # a public attribute: no second load

    told = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    pending = [p for p in allocation.points if not p.told and not _tell_finished(study, p, told)]
    confident = _confident(allocation, space)
    asks = 0
    while (
        not confident
        and len(allocation.points) < allocation.points_total
        and len(pending) < get_settings().max_points_in_flight
        and asks < MAX_ASKS_PER_POINT * allocation.points_total
    ):
        asks += 1
        optuna_trial = study.ask()
        point = space.suggest(optuna_trial)
        if point is None:
            study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)
            continue
        row = _add_point(session, allocation, optuna_trial.number, point, space)
        study_labels.describe_trial(optuna_trial, point, row, space.weak_cost, space.gold_cost)
        if not _tell_finished(study, row, told):  # a point whose trials are all stored is told at once
            pending.append(row)

    while not pending and (steadied := unstable_leader.steady(session, allocation, space)) is not None:
        steadied.told = False  # waits for its new seeds (already told to the study: _tell_finished knows)
        if not _tell_finished(study, steadied, told):
            pending.append(steadied)
    if not pending:
        _finish(allocation)
    else:
        allocation.status = AllocationStatus.running
    session.flush()
    return [t.id for p in pending for t in p.trials if t.status == TrialStatus.queued]


def _confident(allocation: Allocation, space: SearchSpace) -> bool:
    """Whether an allocation asked to stop when confident should ask no more points: its opening
    points and MIN_SURFACE_POINTS more are asked, and the stop rule (search_verdict) says more are
    unlikely to matter."""
    if not allocation.request.get("stop_when_confident"):
        return False
    if len(allocation.points) < len(opening_params(space, allocation.points_total)) + MIN_SURFACE_POINTS:
        return False
    found = search_verdict.verdict(space, allocation.points)
    return bool(found and found["confident"])


def _search_summary(allocation: Allocation) -> dict:
    """How much of its cap the search used, and what its stop rule concludes (recommendation.search)."""
    found = search_verdict.verdict(_space_of(allocation), allocation.points)
    asked = len(allocation.points)
    return {
        "points_asked": asked, "points_cap": allocation.points_total,
        "trials_used": sum(t.status in (TrialStatus.done, TrialStatus.failed) for t in trials_of(allocation)),
        "stopped_early": bool(allocation.request.get("stop_when_confident") and found and found["confident"]
                              and asked < allocation.points_total),
        "seeds_added": unstable_leader.seeds_added(allocation),
        "stop_rule": found,
    }


def _finish(allocation: Allocation) -> None:
    # Grouped together, not point by point: a one-seed point borrows its recipe's seed spread.
    finished = {t.id: t for p in allocation.points if all(t.status == TrialStatus.done for t in p.trials)
                for t in p.trials}
    stats = group_trials(finished.values())
    if not stats:
        allocation.status = AllocationStatus.failed
        allocation.error = "no point of the search finished: see the trials' errors"
        webhooks.note_ended(allocation)
        return
    task = allocation.task
    allocation.recommendation = {
        **recommendation(stats, allocation.request, majority_rate(task),
                         weak_label_accuracy(trials_of(allocation))),
        "search": _search_summary(allocation),
    }
    allocation.status = AllocationStatus.done
    webhooks.note_ended(allocation)  # its callback, if any, goes out once this transaction commits


def weak_label_accuracy(trials: list[Trial]) -> float | None:
    """Mean accuracy of the weak labels the trials bought (None when none bought any)."""
    seen = [t.result["weak_label_accuracy"] for t in trials
            if t.status == TrialStatus.done and t.n_weak and (t.result or {}).get("weak_label_accuracy") is not None]
    return sum(seen) / len(seen) if seen else None


def progress(allocation: Allocation) -> dict:
    trials = [t for p in allocation.points for t in p.trials]
    done = [s for p in allocation.points for s in group_trials(p.trials)]
    best = max(done, key=lambda s: s.accuracy, default=None)
    request = allocation.request
    return {
        "points_total": allocation.points_total,
        "points_asked": len(allocation.points),
        "points_done": sum(p.told for p in allocation.points),
        "trials_total": allocation.points_total * len(request["seeds"]) + unstable_leader.seeds_added(allocation),
        "trials_done": sum(t.status == TrialStatus.done for t in trials),
        "trials_failed": sum(t.status == TrialStatus.failed for t in trials),
        "best_so_far": best.summary(request["weak_cost"], request["gold_cost"]) if best else None,
        "running": trial_progress.running(trials),
    }


def allocations_waiting_on(session: Session, trial_id: int) -> list[str]:
    return list(
        session.scalars(
            select(StudyPoint.allocation_id)
            .join(StudyPointTrial, StudyPointTrial.point_id == StudyPoint.id)
            .join(Allocation, Allocation.id == StudyPoint.allocation_id)
            .where(StudyPointTrial.trial_id == trial_id, Allocation.status != AllocationStatus.done)
            .distinct()
        )
    )


def trials_of(allocation: Allocation) -> list[Trial]:
    return [t for p in allocation.points for t in p.trials]


def with_everything_shown(query: Select) -> Select:
    """Load what allocation_out reads (points, their trials, the task) in a fixed number of queries,
    not one per point."""
    return query.options(selectinload(Allocation.points).selectinload(StudyPoint.trials), joinedload(Allocation.task))


def allocation_out(allocation: Allocation) -> AllocationOut:
    return AllocationOut(
        id=allocation.id,
        status=allocation.status,
        sweep_id=allocation.sweep_id,
        task=allocation.task.shown_name,
        label=allocation.label,
        created_at=allocation.created_at,
        request=allocation.request,
        progress=progress(allocation),
        recommendation=allocation.recommendation,
        error=allocation.error,
        callback=callback_out(allocation),
        trials=[TrialOut.model_validate(t).model_dump(mode="json") for t in trials_of(allocation)],
    )


def callback_out(allocation: Allocation) -> CallbackOut | None:
    if not allocation.callback_url:
        return None
    return CallbackOut(url=allocation.callback_url, state=allocation.callback_state,
                       attempts=allocation.callback_attempts, error=allocation.callback_error)
