"""Registering tasks (built-in, hub or uploaded) and handing their data to the engine."""

from __future__ import annotations

from itertools import islice
from typing import BinaryIO

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import outbox
from app.auth.quota import check_upload_quota, check_work_quota
from app.config import get_settings
from app.db.models import Example, Task, TaskSource
from app.errors import ConflictError, NotFoundError, RequestError
from app.tasks import names as task_names
from app.tasks import uploads
from app.tasks.imports import FieldMapping, read_import
from worker.engine.tasks import (
    BUILTIN_TASKS,
    HF_LOADERS,
    Split,
    get_task,
    split_pool_test,
    stable_id,
    task_version,
)
from worker.engine.tasks import (
    Task as EngineTask,
)
from worker.engine.tasks.base import BINARY_CLASSES, split_stratified
from worker.engine.weak_labels import (
    WeakLabelerError,
    default_labeler_name,
    describe,
    labeler_train_size,
    weak_labels,
)

TASK_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def _find(session: Session, name: str) -> Task | None:
    """A built-in or hub task by its (plain) name."""
    return session.scalars(select(Task).where(Task.name == name)).one_or_none()


# Names listed in a 404: enough to spot a typo, short enough to read.
MAX_NAMES_LISTED = 30


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_LISTED])
    return shown + (f" and {len(names) - MAX_NAMES_LISTED} more" if len(names) > MAX_NAMES_LISTED else "")


def buyable(task: Task, weak_labeler: str) -> int:
    """Pool examples a trial can buy labels for: the weak labeler keeps its training examples."""
    return task.n_pool - labeler_train_size(task.n_pool, weak_labeler, task.has_weak_labels)


def _not_registered(session: Session, name: str, team: str | None) -> NotFoundError:
    if name in BUILTIN_TASKS:
        return NotFoundError(
            f"task {name!r} is built in but not registered yet: register it with POST /tasks "
            f"(form field dataset={name}); starting an allocation or a study on it registers it too"
        )
    query = select(Task).order_by(Task.name)
    if team is not None:
        query = query.where((Task.team.is_(None)) | (Task.team == team))  # another team's uploads stay unseen
    registered = sorted(t.shown_name for t in session.scalars(query))
    builtin = [b for b in BUILTIN_TASKS if b not in registered]
    return NotFoundError(f"task {name!r} not found; registered: {_listed(registered) or 'none'}; built in "
                         f"(POST /tasks with dataset=NAME registers one): {_listed(builtin) or 'all registered'}")


def get_task_row(session: Session, name: str, team: str | None = None) -> Task:
    """The registered task called `name`; NotFoundError otherwise, also when it is another team's
    upload (given `team`: to that team it does not exist).

    A read never registers anything: registering a built-in task builds it (seconds of CPU) and
    queues its weak labels, which a GET (a crawler, a health probe, a dashboard) must not set off.
    Requests that write use get_or_register_task. Nor does a read rebuild a built-in task that a
    newer labelmix builds differently: start-up does (refresh_stale_builtin_tasks).
    """
    task = task_names.find(session, name, team)
    if task is None:
        raise _not_registered(session, name, team)
    return task


def _stale(task: Task) -> bool:
    return task.source != TaskSource.upload and task.version != task_version(task.name)


def get_or_register_task(session: Session, name: str, team: str | None = None) -> Task:
    """For requests that write (an allocation, a study): a built-in task is registered on first use,
    and rebuilt if this labelmix builds it differently (start-up normally has)."""
    if name in BUILTIN_TASKS and _find(session, name) is None:
        return register_named(session, name)
    task = get_task_row(session, name, team)
    if _stale(task):
        _refresh(session, task)
    return task


def refresh_stale_builtin_tasks(session: Session) -> list[str]:
    """Rebuild the registered built-in and hub tasks this labelmix builds differently (after an
    upgrade: seconds each, once); their names."""
    stale = [t for t in session.scalars(select(Task).where(Task.source != TaskSource.upload)) if _stale(t)]
    for task in stale:
        _refresh(session, task)
    return [t.name for t in stale]


def concrete_labeler(task: Task, labeler: str) -> str:
    """The labeler a request's `weak_labeler` names, spelled out so trial keys say what trained them.

    "default" would otherwise name different labels whenever the default changes (it was bow:300,
    it is now a small fine-tuned model); a task with weak labels of its own defaults to those.
    """
    try:
        name = default_labeler_name(labeler, task.has_weak_labels)
    except WeakLabelerError as exc:
        raise RequestError("weak_labeler", str(exc)) from None
    if name == "task" and not task.has_weak_labels:  # checked here, not when a worker finds out
        raise RequestError(
            "weak_labeler", f"task {task.shown_name!r} brought no weak labels of its own: use default, bow[:N] or sft:<model>[:N]"
        )
    return name


def _refresh(session: Session, task: Task) -> None:
    """A built-in task this labelmix builds differently: describe the new build; older trials stay
    stored under their own task_version and drop out of the frontier (trial_records.current_trials)."""
    engine_task = get_task(task.name)
    fresh = _row_from_engine_task(task.name, TaskSource(task.source), engine_task)
    for column in ("description", "n_pool", "n_test", "pool_positive_rate", "test_positive_rate", "classes",
                   "pool_class_rates", "test_class_rates", "version"):
        setattr(task, column, getattr(fresh, column))
    if not _describe_cached_weak_labels(task, engine_task):
        _build_weak_labels_after_commit(session, task.name)
    session.flush()


def task_classes(task: Task) -> tuple[str, ...]:
    """A stored task's class names in label order (a binary task stores none: "0" and "1")."""
    return tuple(task.classes) if task.classes else BINARY_CLASSES


def majority_rate(task: Task) -> float:
    """Accuracy of always answering the test set's commonest class: the bar for "beats chance"."""
    if task.test_class_rates:
        return max(task.test_class_rates)
    return max(task.test_positive_rate, 1 - task.test_positive_rate)


def _row_from_engine_task(name: str, source: TaskSource, engine_task: EngineTask) -> Task:
    binary = engine_task.n_classes == 2
    return Task(
        name=name,
        source=source,
        description=engine_task.description,
        n_pool=len(engine_task.pool),
        n_test=len(engine_task.test),
        pool_positive_rate=engine_task.pool.positive_rate if binary else None,
        test_positive_rate=engine_task.test.positive_rate if binary else None,
        # Kept where they are names: "0" and "1" are what a binary task's row always meant.
        classes=None if engine_task.classes == BINARY_CLASSES else list(engine_task.classes),
        pool_class_rates=None if binary else [round(float(r), 6) for r in engine_task.pool.class_rates],
        test_class_rates=None if binary else [round(float(r), 6) for r in engine_task.test.class_rates],
        has_weak_labels=engine_task.has_own_weak_labels,
        version=task_version(name) if source != TaskSource.upload else 1,
    )


def register_named(session: Session, name: str) -> Task:
    """A built-in task, or a Hugging Face data set (which needs the hub), by name."""
    if name not in BUILTIN_TASKS and name not in HF_LOADERS:
        raise RequestError("dataset", f"unknown data set {name!r}; known: {', '.join([*BUILTIN_TASKS, *HF_LOADERS])}")
    existing = _find(session, name)
    if existing is not None:
        return existing
    try:
        engine_task = get_task(name)
    except ConnectionError as exc:
        raise RequestError("dataset", str(exc)) from exc
    source = TaskSource.builtin if name in BUILTIN_TASKS else TaskSource.huggingface
    task = _row_from_engine_task(name, source, engine_task)
    labels_ready = _describe_cached_weak_labels(task, engine_task)
    try:
        # First registrations of one task can come together (several clients starting on a fresh
        # install): one insert wins the unique name; the others, rolled back to this savepoint,
        # read the winner's row (committed by then: their insert waited for it) instead of failing.
        with session.begin_nested():
            session.add(task)
    except IntegrityError:
        return session.scalars(select(Task).where(Task.name == name)).one()
    if not labels_ready:
        _build_weak_labels_after_commit(session, name)
    return task


def _describe_cached_weak_labels(task: Task, engine_task: EngineTask) -> bool:
    """How the default weak labels are made and how good they are (with warnings), on the row;
    False when they are not built yet (the row says so until they are)."""
    labels = weak_labels(engine_task, cached_only=True)
    if labels is None:
        task.weak_labels = task.weak_label_accuracy = None
        return False
    describe_weak_labels(task, labels)
    return True


def _build_weak_labels_after_commit(session: Session, task_name: str) -> None:
    """A worker builds the labels once this transaction commits (training the default labeler takes
    minutes, too long for a request); the row is described when they are ready."""
    outbox.send_after_commit(session, "enqueue_weak_labels", task_name)


def describe_weak_labels(task: Task, labels) -> None:
    task.weak_labels = describe(labels)
    task.weak_label_accuracy = task.weak_labels["accuracy"]


def register_upload(session: Session, name: str, upload: BinaryIO, filename: str,
                    team: str | None = None, fmt: str | None = None,
                    mapping: FieldMapping | None = None) -> tuple[Task, dict]:
    """Validate an uploaded file (CSV, JSONL or an annotation tool's export: app/tasks/imports) and
    store it whole, or raise and store nothing. Returns the task and what became of the file's
    records (read, kept, identical duplicates dropped, left out on purpose and why).

    `upload` is the spooled file as it arrived: it is measured in chunks and parsed a line at a time,
    never read whole into memory.
    """
    if not name or not set(name) <= TASK_NAME_CHARS or len(name) > 100:
        raise RequestError("name", "use 1-100 lowercase letters, digits, '_' or '-'")
    if name in BUILTIN_TASKS or name in HF_LOADERS:
        raise ConflictError(f"task name {name!r} is reserved for a built-in or hub data set")
    if task_names.find(session, name, team) is not None:  # the team's own (or, keyless, any) upload
        raise ConflictError(f"task {name!r} already exists")
    if team is not None:
        check_upload_quota(session, team)  # before the file is read: a team at its cap costs nothing
    settings = get_settings()
    uploads.check_size(upload, settings.max_upload_bytes)
    imported = read_import(upload, filename, fmt, mapping or FieldMapping(), settings.max_upload_rows,
                           max_bytes=settings.max_upload_bytes)
    rows = uploads.validate_rows(imported.rows, names=imported.names)
    if team is not None:
        check_upload_quota(session, team, len(rows.texts))

    stored = task_names.stored_name(team, name)
    engine_task = _engine_task_of(stored, rows)
    task = _row_from_engine_task(stored, TaskSource.upload, engine_task)
    task.team = team
    labels_ready = _describe_cached_weak_labels(task, engine_task)
    if not labels_ready and team is not None:
        # Building them trains a labeler on the trials queue: work the team's limit counts.
        check_work_quota(session, team, 1, what="this upload's weak-labeler build")
    session.add(task)
    try:
        session.flush()
    except IntegrityError:
        # Another upload of this name committed after the check above: the caller rolls this
        # transaction back whole, so nothing of this one remains.
        raise ConflictError(f"task {name!r} already exists") from None
    _insert_examples(session, task.id, (("pool", engine_task.pool), ("test", engine_task.test)))
    if not labels_ready:
        _build_weak_labels_after_commit(session, stored)
    return task, {**rows.summary, "left_out": imported.dropped}


def _engine_task_of(name: str, rows: uploads.ValidRows) -> EngineTask:
    """The uploaded rows as a task: a binary one's test set balanced (as ever), K > 2 classes' in
    the file's proportions."""
    k = len(rows.classes)
    data = Split(ids=[stable_id(t) for t in rows.texts], texts=rows.texts, labels=rows.labels, weak_probs=rows.weak,
                 n_classes=k)
    rng = np.random.default_rng(0)
    if k == 2:
        n_test = min(1000, 2 * (min(int((rows.labels == 0).sum()), int((rows.labels == 1).sum())) // 5))
        pool, test = split_pool_test(data, n_test, rng)
    else:
        pool, test = split_stratified(data, min(1000, len(data) // 5), rng)
    return EngineTask(name, pool, test, classes=rows.classes)


# Rows a single INSERT carries: a whole upload as one statement held its parameters (a dict a row, then
# the driver's copy) all at once. With the rows kept small (uploads.RawRow), a 100k-row upload's peak
# went from +199 to +48 MB, four at once from +771 to +151 MB (Postgres; docs/bench/upload-memory.json).
INSERT_CHUNK_ROWS = 2_000


def _insert_examples(session: Session, task_id: int, splits) -> None:
    """Multi-row INSERTs rather than an ORM object per row (a 100k-row upload takes about 2 s in all),
    a chunk at a time, in the caller's transaction: a failure still leaves nothing behind."""
    rows = (
        {"task_id": task_id, "split": split_name, "position": i, "text": split.texts[i],
         "label": int(split.labels[i]),
         "weak_prob": None if split.weak_probs is None or split.n_classes > 2 else float(split.weak_probs[i]),
         "weak_probs": None if split.weak_probs is None or split.n_classes == 2 else
         [round(float(p), 6) for p in split.weak_probs[i]]}
        for split_name, split in splits
        for i in range(len(split))
    )
    while chunk := list(islice(rows, INSERT_CHUNK_ROWS)):
        session.execute(insert(Example), chunk)


def engine_task(session: Session, task: Task) -> EngineTask:
    """The engine's view of a stored task: rebuilt by name, or read back from uploaded rows."""
    if task.source != TaskSource.upload:
        return get_task(task.name)
    splits = {}
    classes = task_classes(task)
    for split_name in ("pool", "test"):
        rows = session.execute(
            select(Example.text, Example.label, Example.weak_prob, Example.weak_probs)
            .where(Example.task_id == task.id, Example.split == split_name)
            .order_by(Example.position)
        ).all()
        texts = [r.text for r in rows]
        weak = None
        if task.has_weak_labels:
            weak = np.array([r.weak_prob if len(classes) == 2 else r.weak_probs for r in rows], dtype=np.float32)
        splits[split_name] = Split(
            ids=[stable_id(t) for t in texts],
            texts=texts,
            labels=np.array([r.label for r in rows], dtype=np.int64),
            weak_probs=weak,
            n_classes=len(classes),
        )
    return EngineTask(task.name, splits["pool"], splits["test"], description=task.description, classes=classes)
