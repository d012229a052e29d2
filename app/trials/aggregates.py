"""Per-point aggregates of done trials: a frontier reads one row per point, not every trial.

A point's row (db.models.PointAggregate) holds its trials' ids, seeds and accuracies and the test
part's seed and example variances, computed by intervals.Scores from the trials' per-example
records, exactly as a read of the trials would compute them. Reading a point then needs no
per-example record, except for a paired comparison, which loads its trials' records on demand.

Rows are brought up to date before every read (`refresh`): done trials not yet counted
(`trials.aggregated` false, whoever wrote them: a worker finishing, an import, a test) mark their
points for recomputation from all of their trials, and move the task's `results_version`, which
names every cached answer about the task. One refresh per task runs at a time (a Postgres
advisory lock), so two readers cannot write a point from different sets of its trials.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from cachetools import LRUCache
from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.db.models import PointAggregate, Task, Trial, TrialStatus
from app.db.session import session_scope
from app.results import kept_points
from app.results.points import PointStats, StoredPoint, group_trials, lend_seed_variance
from app.stats.intervals import StoredVariances
from app.trials.records import current_records
from worker.engine.metrics import unpack_correct
from worker.engine.spec import ENGINE_VERSION

# pg_advisory_xact_lock(REFRESH_LOCK, task id): one refresh of a task's aggregates at a time.
REFRESH_LOCK = 0x6C6D7802
# Up to this many stale points are read by their keys (an IN list); more, by reading the whole task.
BATCH = 500
# Rows per INSERT or UPDATE statement.
WRITE_BATCH = 1000
# Recipe counts kept per process (recipe_counts), least recently used out.
_recipes_cache: LRUCache = LRUCache(maxsize=64)
_cache_lock = threading.Lock()
# The session of the read in progress in this thread's context (refresh_for_read).
_reading: ContextVar[Session | None] = ContextVar("labelmix_reading_session", default=None)
_POINT = (Trial.model, Trial.method, Trial.weak_labeler, Trial.recipe, Trial.params_key, Trial.n_weak, Trial.n_gold)
_UNIQUE = ["task_id", "task_version", "engine_version", "model", "method", "weak_labeler", "recipe", "params_key", "n_weak", "n_gold"]


def _unaggregated(task: Task):
    return (
        (Trial.task_id == task.id) & ~Trial.aggregated & (Trial.status == TrialStatus.done)
        & (Trial.task_version == task.version) & (Trial.engine_version == ENGINE_VERSION)
        & Trial.test_accuracy.is_not(None)
    )


def refresh(session: Session, task: Task) -> int:
    """Recompute the points that have done trials not yet counted; returns how many."""
    if session.scalar(select(Trial.id).where(_unaggregated(task)).limit(1)) is None:
        return 0  # the usual case, one indexed lookup
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:lock, :task)"), {"lock": REFRESH_LOCK, "task": task.id})
    stale = [tuple(key) for key in session.execute(select(*_POINT).where(_unaggregated(task)).distinct())]
    if not stale:
        return 0  # counted by the refresh this one waited for
    if len(stale) > BATCH:  # a backlog (after a migration, a bulk import): one read of the task beats many IN lists
        records = current_records(session, task)
    else:
        records = current_records(session, task, where=tuple_(*_POINT).in_(stale))
    _write(session, task, group_trials(records), revision=_results_moved(session, task))
    ids = [r.id for r in records]
    for start in range(0, len(ids), WRITE_BATCH):
        session.execute(update(Trial).where(Trial.id.in_(ids[start:start + WRITE_BATCH])).values(aggregated=True)
                        .execution_options(synchronize_session=False))
    return len(stale)


def _results_moved(session: Session, task: Task) -> int:
    """Move the task's results_version, in the database (under the lock: no increment is lost) and on
    the loaded row, which names cached answers (api.stored_answers) for the rest of this request;
    returns it, the revision of the rows this refresh writes."""
    moved = session.scalar(
        update(Task).where(Task.id == task.id).values(results_version=Task.results_version + 1)
        .returning(Task.results_version).execution_options(synchronize_session=False)
    )
    set_committed_value(task, "results_version", moved)
    return moved


def refresh_for_read(session: Session, task: Task) -> None:
    """Bring the task's aggregates up to date before `session` reads them, and commit: kept points
    (read_points) load their details later, in whichever request uses them, and must find the rows."""
    if refresh(session, task):
        session.commit()
    _reading.set(session)


def refresh_all(session: Session) -> int:
    """Bring every task's aggregates up to date (after a migration, or trials written in bulk)."""
    return sum(refresh(session, task) for task in session.scalars(select(Task)))


def _write(session: Session, task: Task, points: Iterable[PointStats], revision: int) -> None:
    rows = [{**_row(task, p), "revision": revision} for p in points]
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    changing = ("recipe_label", "first_trial_id", "n_trials", "test_mean", "selection_mean", "holdout_mean", "trials",
                "seed_variance", "example_variance", "revision")
    for start in range(0, len(rows), WRITE_BATCH):
        statement = insert(PointAggregate).values(rows[start:start + WRITE_BATCH])
        session.execute(statement.on_conflict_do_update(
            index_elements=_UNIQUE, set_={c: getattr(statement.excluded, c) for c in changing}
        ))


def _row(task: Task, point: PointStats) -> dict:
    variances = point.scores("test").variances()
    return {
        "task_id": task.id, "task_version": task.version, "engine_version": ENGINE_VERSION,
        "recipe_label": point.recipe_label,
        "model": point.model, "method": point.method, "weak_labeler": point.weak_labeler, "recipe": point.recipe,
        "params_key": point.params_key, "n_weak": point.n_weak, "n_gold": point.n_gold,
        "first_trial_id": point.trial_ids[0], "n_trials": len(point.trial_ids),
        "test_mean": point.accuracy, "selection_mean": point.selection_accuracy, "holdout_mean": point.holdout_accuracy,
        "trials": {"id": point.trial_ids, "seed": point.seeds, "test": point.test, "selection": point.selection,
                   "holdout": point.holdout, "n_test": point.n_test, "learned": point.learned},
        "seed_variance": variances.seed, "example_variance": variances.example,
    }


def recipe_counts(session: Session, task: Task, model: str | None = None) -> list[dict]:
    """The recipes among the task's current points, the one with the most trials first (kept per
    process until the task's results move)."""
    key = (*_task_key(session, task), task.results_version, model)
    with _cache_lock:
        counts = _recipes_cache.get(key)
    if counts is None:
        counts = _recipe_counts(session, task, model)
        with _cache_lock:
            _recipes_cache[key] = counts
    return counts


def _task_key(session: Session, task: Task) -> tuple:
    """Names one version of one task in one database (a task deleted and made again is another)."""
    return (str(session.bind.url), task.id, task.created_at, task.version)


def _recipe_counts(session: Session, task: Task, model: str | None) -> list[dict]:
    query = (
        select(PointAggregate.recipe_label, func.sum(PointAggregate.n_trials))
        .where(PointAggregate.task_id == task.id, PointAggregate.task_version == task.version,
               PointAggregate.engine_version == ENGINE_VERSION)
        .group_by(PointAggregate.recipe_label)
    )
    if model:
        query = query.where(PointAggregate.model == model)
    counts = [(label, int(n)) for label, n in session.execute(query)]
    return [{"recipe": label, "n_trials": n} for label, n in sorted(counts, key=lambda row: (-row[1], row[0]))]


_SUMMARY = (
    PointAggregate.id, PointAggregate.method, PointAggregate.n_weak, PointAggregate.n_gold, PointAggregate.model,
    PointAggregate.recipe, PointAggregate.weak_labeler, PointAggregate.params_key, PointAggregate.recipe_label,
    PointAggregate.n_trials, PointAggregate.test_mean, PointAggregate.selection_mean, PointAggregate.holdout_mean,
    PointAggregate.seed_variance, PointAggregate.example_variance, PointAggregate.first_trial_id,
)


def read_points(session: Session, task: Task, model: str | None, recipe: str) -> list[PointStats]:
    """The recipe's points (of one model, when given), in the order their trials were first stored.

    Kept per process (kept_points): points do not depend on prices, so a frontier at new prices, the
    dashboard's commonest request, reads none; after the task's results move, only the rows written
    since are read. The list is shared: callers must not change it.
    """
    def read_all() -> list[PointStats]:
        points = _read_points(session, task, model, recipe)
        lend_seed_variance(points)
        return points

    return kept_points.kept((*_task_key(session, task), model, recipe), task.results_version, read_all,
                            lambda version: _read_points(session, task, model, recipe, since=version))


def forget_points() -> None:
    """Drop every kept point list and recipe count (tests that delete trials, which only a task's
    deletion does otherwise)."""
    kept_points.forget()
    with _cache_lock:
        _recipes_cache.clear()


def _read_points(session: Session, task: Task, model: str | None, recipe: str,
                 since: int | None = None) -> list[PointStats]:
    """The points whose rows were written after results version `since` (all, without), in their
    first trials' order, priors not lent. Plain columns, not ORM rows, and not the per-trial lists:
    at 100k trials (25k points) those were most of a read; a frontier loads them for the points it
    describes (points.with_details)."""
    query = select(*_SUMMARY).where(
        PointAggregate.task_id == task.id, PointAggregate.task_version == task.version,
        PointAggregate.engine_version == ENGINE_VERSION, PointAggregate.recipe_label == recipe,
    )
    if model:
        query = query.where(PointAggregate.model == model)
    if since is not None:
        query = query.where(PointAggregate.revision > since)
    points = []
    for (aggregate_id, method, n_weak, n_gold, model_, recipe_, labeler, params_key, label, k, test_mean,
         selection_mean, holdout_mean, seed_variance, example_variance, first_trial_id) in session.execute(
            query.order_by(PointAggregate.first_trial_id)):
        stored = StoredPoint(aggregate_id, first_trial_id, k, test_mean, selection_mean, holdout_mean,
                             StoredVariances(seed_variance, example_variance), _load_details, _load_correct)
        points.append(PointStats(method, n_weak, n_gold, model_, recipe_, labeler, params_key=params_key,
                                 recipe_label=label, stored=stored))
    return points


@contextmanager
def _reading_session() -> Iterator[Session]:
    """The session of the read now using kept points (refresh_for_read set it), or one of its own.

    Not always one of its own: a request holding a pooled connection while waiting for a second
    could, 40 at once, wait for each other until the pool timed out."""
    session = _reading.get()
    if session is not None and session.is_active:
        yield session
    else:
        with session_scope() as own:
            yield own


def _load_details(points: list[PointStats]) -> None:
    """Fill in points' per-trial lists from their aggregate rows, in one query (two when a row was
    written before it kept its trials' `learned`)."""
    ids = [p.stored.aggregate_id for p in points]
    with _reading_session() as session:
        found = dict(session.execute(
            select(PointAggregate.id, PointAggregate.trials).where(PointAggregate.id.in_(ids))
        ).all())
        # Such a row is rewritten only when its point gets a trial: until then its trials say.
        older = [i for row in found.values() if "learned" not in row for i in row["id"]]
        learned = dict(session.execute(
            select(Trial.id, Trial.result["learned"].as_boolean()).where(Trial.id.in_(older))
        ).all()) if older else {}
    for p in points:
        trials = found[p.stored.aggregate_id]
        p.trial_ids, p.seeds, p.n_test = list(trials["id"]), list(trials["seed"]), list(trials["n_test"])
        p.test, p.selection, p.holdout = list(trials["test"]), list(trials["selection"]), list(trials["holdout"])
        p.learned = list(trials["learned"]) if "learned" in trials else [learned.get(i) for i in p.trial_ids]


def _load_correct(trial_ids: list[int]) -> list[np.ndarray | None]:
    """The per-example records of some trials, in the order given (None where not recorded)."""
    query = select(Trial.id, Trial.result["test_correct"].as_string(), Trial.result["n_test"].as_integer())
    with _reading_session() as session:
        found = {i: (packed, n) for i, packed, n in session.execute(query.where(Trial.id.in_(trial_ids)))}
    return [unpack_correct(packed, n) if packed else None for packed, n in (found[i] for i in trial_ids)]
