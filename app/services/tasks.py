"""Registering tasks (built-in, hub or uploaded) and handing their data to the engine."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
from sqlalchemy import event, select
from sqlalchemy.orm import Session, object_session

from worker.engine.tasks import (
    BUILTIN_TASKS,
    HF_LOADERS,
    Split,
    Task as EngineTask,
    split_pool_test,
    stable_id,
    task_version,
)

from ..db.models import Example, Task, TaskSource
from .errors import ConflictError, NotFoundError, RequestError

MIN_ROWS_PER_CLASS = 10
MAX_UPLOAD_ROWS = 200_000
TASK_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def get_task_row(session: Session, name: str) -> Task:
    """The task called `name`, registering a built-in one on first use; NotFoundError otherwise."""
    task = session.scalars(select(Task).where(Task.name == name)).one_or_none()
    if task is None and name in BUILTIN_TASKS:
        task = register_named(session, name)
    if task is None:
        raise NotFoundError(f"task {name!r} not found")
    if task.source != TaskSource.upload and task.version != task_version(name):
        _refresh(session, task)
    return task


def concrete_labeler(task: Task, labeler: str) -> str:
    """The labeler a request's `weak_labeler` names, spelled out so trial keys say what trained them.

    "default" would otherwise name different labels whenever the default changes (it was bow:300,
    it is now a small fine-tuned model); a task with weak labels of its own defaults to those.
    """
    from worker.engine.weak_labels import WeakLabelerError, default_labeler_name

    try:
        return default_labeler_name(labeler, task.has_weak_labels)
    except WeakLabelerError as exc:
        raise RequestError("weak_labeler", str(exc)) from None


def _refresh(session: Session, task: Task) -> None:
    """A built-in task this labelmix builds differently: describe the new build; older trials stay
    stored under their own task_version and drop out of the frontier (trials.current_trials)."""
    from worker.engine.tasks import get_task

    engine_task = get_task(task.name)
    fresh = _row_from_engine_task(task.name, TaskSource(task.source), engine_task)
    for column in ("description", "n_pool", "n_test", "pool_positive_rate", "test_positive_rate", "version"):
        setattr(task, column, getattr(fresh, column))
    _describe_or_build_weak_labels(task, engine_task)
    session.flush()


def _row_from_engine_task(name: str, source: TaskSource, engine_task: EngineTask) -> Task:
    return Task(
        name=name,
        source=source,
        description=engine_task.description,
        n_pool=len(engine_task.pool),
        n_test=len(engine_task.test),
        pool_positive_rate=engine_task.pool.positive_rate,
        test_positive_rate=engine_task.test.positive_rate,
        has_weak_labels=engine_task.has_own_weak_labels,
        version=task_version(name) if source != TaskSource.upload else 1,
    )


def register_named(session: Session, name: str) -> Task:
    """A built-in task, or a Hugging Face data set (which needs the hub), by name."""
    from worker.engine.tasks import get_task

    if name not in BUILTIN_TASKS and name not in HF_LOADERS:
        raise RequestError("dataset", f"unknown data set {name!r}; known: {', '.join([*BUILTIN_TASKS, *HF_LOADERS])}")
    existing = session.scalars(select(Task).where(Task.name == name)).one_or_none()
    if existing is not None:
        return existing
    try:
        engine_task = get_task(name)
    except ConnectionError as exc:
        raise RequestError("dataset", str(exc)) from exc
    source = TaskSource.builtin if name in BUILTIN_TASKS else TaskSource.huggingface
    task = _row_from_engine_task(name, source, engine_task)
    session.add(task)
    _describe_or_build_weak_labels(task, engine_task)
    session.flush()
    return task


def _describe_or_build_weak_labels(task: Task, engine_task: EngineTask) -> None:
    """How the default weak labels are made and how good they are (with warnings), on the row.

    Labels not built yet are built by a worker once this transaction commits (training the default
    labeler takes minutes, too long for a request); the row is described when they are ready.
    """
    from worker.engine.weak_labels import weak_labels

    labels = weak_labels(engine_task, cached_only=True)
    if labels is not None:
        describe_weak_labels(task, labels)
        return
    task.weak_labels = task.weak_label_accuracy = None
    session = object_session(task)

    @event.listens_for(session, "after_commit", once=True)
    def build_them(_session) -> None:
        from ..dispatch import get_dispatcher

        get_dispatcher().enqueue_weak_labels(task.name)


def describe_weak_labels(task: Task, labels) -> None:
    from worker.engine.weak_labels import describe

    task.weak_labels = describe(labels)
    task.weak_label_accuracy = task.weak_labels["accuracy"]


def _parse_rows(content: bytes, filename: str) -> list[dict]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError("file", "is not UTF-8 text") from None
    if filename.lower().endswith((".jsonl", ".ndjson")):
        rows = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RequestError("file", f"line {line_no} is not valid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise RequestError("file", f"line {line_no} is not a JSON object")
            rows.append(row)
        return rows
    if filename.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "text" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise RequestError("file", "a CSV needs a header with the columns text and label")
        return list(reader)
    raise RequestError("file", "must be a .csv or .jsonl file")


def _number(value, field: str, row: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RequestError(field, f"row {row}: {value!r} is not a number") from None
    if math.isnan(number):
        raise RequestError(field, f"row {row}: is not a number")
    return number


def _validate_rows(rows: list[dict]) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    if not rows:
        raise RequestError("file", "has no rows")
    if len(rows) > MAX_UPLOAD_ROWS:
        raise RequestError("file", f"has {len(rows)} rows; at most {MAX_UPLOAD_ROWS} are accepted")
    has_prob = any(r.get("weak_prob") not in (None, "") for r in rows)
    has_hard = any(r.get("weak_label") not in (None, "") for r in rows)
    if has_prob and has_hard:
        raise RequestError("weak_prob", "give weak_prob or weak_label, not both")
    texts, labels, weak = [], [], []
    first_row: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RequestError("text", f"row {i}: text is missing or empty")
        if text in first_row:
            # A repeated text could land in both pool and test and leak the answer.
            raise RequestError("text", f"row {i}: repeats the text of row {first_row[text]}")
        first_row[text] = i
        label = _number(row.get("label"), "label", i)
        if label not in (0, 1):
            raise RequestError("label", f"row {i}: label must be 0 or 1, got {row.get('label')!r}")
        texts.append(text)
        labels.append(int(label))
        if has_prob or has_hard:
            field = "weak_prob" if has_prob else "weak_label"
            value = _number(row.get(field), field, i)
            if has_prob and not 0 <= value <= 1:
                raise RequestError("weak_prob", f"row {i}: must lie in [0, 1], got {value}")
            if has_hard and value not in (0, 1):
                raise RequestError("weak_label", f"row {i}: must be 0 or 1, got {row.get(field)!r}")
            weak.append(value)
    label_array = np.array(labels, dtype=np.int64)
    for cls in (0, 1):
        if (label_array == cls).sum() < MIN_ROWS_PER_CLASS:
            raise RequestError("label", f"needs at least {MIN_ROWS_PER_CLASS} rows with label {cls}")
    return texts, label_array, np.array(weak, dtype=np.float32) if weak else None


def register_upload(session: Session, name: str, content: bytes, filename: str) -> Task:
    """Validate an uploaded CSV/JSONL and store it whole, or raise and store nothing."""
    if not name or not set(name) <= TASK_NAME_CHARS or len(name) > 100:
        raise RequestError("name", "use 1-100 lowercase letters, digits, '_' or '-'")
    if name in BUILTIN_TASKS or name in HF_LOADERS:
        raise ConflictError(f"task name {name!r} is reserved for a built-in or hub data set")
    if session.scalars(select(Task.id).where(Task.name == name)).first() is not None:
        raise ConflictError(f"task {name!r} already exists")
    texts, labels, weak = _validate_rows(_parse_rows(content, filename))

    data = Split(ids=[stable_id(t) for t in texts], texts=texts, labels=labels, weak_probs=weak)
    rng = np.random.default_rng(0)
    n_test = min(1000, 2 * (min(int((labels == 0).sum()), int((labels == 1).sum())) // 5))
    pool, test = split_pool_test(data, n_test, rng)
    task = _row_from_engine_task(name, TaskSource.upload, EngineTask(name, pool, test))
    session.add(task)
    _describe_or_build_weak_labels(task, EngineTask(name, pool, test))
    session.flush()
    for split_name, split in (("pool", pool), ("test", test)):
        session.add_all(
            Example(
                task_id=task.id,
                split=split_name,
                position=i,
                text=split.texts[i],
                label=int(split.labels[i]),
                weak_prob=None if split.weak_probs is None else float(split.weak_probs[i]),
            )
            for i in range(len(split))
        )
    session.flush()
    return task


def engine_task(session: Session, task: Task) -> EngineTask:
    """The engine's view of a stored task: rebuilt by name, or read back from uploaded rows."""
    if task.source != TaskSource.upload:
        from worker.engine.tasks import get_task

        return get_task(task.name)
    splits = {}
    for split_name in ("pool", "test"):
        rows = session.execute(
            select(Example.text, Example.label, Example.weak_prob)
            .where(Example.task_id == task.id, Example.split == split_name)
            .order_by(Example.position)
        ).all()
        texts = [r.text for r in rows]
        weak = np.array([r.weak_prob for r in rows], dtype=np.float32) if task.has_weak_labels else None
        splits[split_name] = Split(
            ids=[stable_id(t) for t in texts],
            texts=texts,
            labels=np.array([r.label for r in rows], dtype=np.int64),
            weak_probs=weak,
        )
    return EngineTask(task.name, splits["pool"], splits["test"], description=task.description)
