"""Done trials carried between databases: `labelmix trials export` and `labelmix trials import`.

A trial is its spec and the engine's result. Its key is a digest of the spec (engine and task
versions included), so a trial read back anywhere is the same measurement: an import stores it
under that key, a study or allocation asking for the same spec reads it instead of training it, and
one trained by another engine or on another build of a task is stored but never served as current
(trial_records.current_trials), as on the service that trained it; except that a two-class trial of
an engine version the current one reproduces exactly (spec.BINARY_SAME_SINCE) is stored as the
current engine's, so an upgrade that changed only tasks of more classes keeps the binary evidence
(export, then import into the same database, carries a service's own). What an import refuses: a spec
that does not hash to its key (edited, or written by a labelmix whose specs differ), a result the
engine would not write, a task unknown here, and an uploaded task's trials (the export does not
carry its rows, and an upload of the same name elsewhere may hold others). Nothing is half-written:
the records are checked first, then stored in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import Task, TaskSource, Trial, TrialStatus
from app.errors import RequestError, RequestErrors, ServiceError
from app.tasks.registry import get_or_register_task, get_task_row, task_classes
from app.trials import aggregates as point_aggregates
from app.trials.cache import done_values, get_or_create_trial
from worker.engine.spec import TrialResult, TrialSpec, carried_forward

IMPORT_WORKER = "import"


def export_trials(session: Session, task: str | None = None) -> Iterator[dict]:
    """Every done trial (of one task, by its stored name, when given), oldest first, as JSON-ready
    records; an unknown task raises here, before anything is read."""
    query = select(Trial).where(Trial.status == TrialStatus.done).order_by(Trial.id)
    if task is not None:
        query = query.where(Trial.task_id == get_task_row(session, task).id)
    trials = session.scalars(query.execution_options(yield_per=500))
    return ({"key": t.key, "spec": t.spec, "result": t.result} for t in trials)


@dataclass(frozen=True)
class Imported:
    stored: int  # new done trials, or queued ones the import finished
    already_done: int  # the same key was done here already: kept as it was
    tasks: list[str]
    carried_forward: int = 0  # of an older engine that this one reproduces exactly: stored as this one's


def read_records(lines: Iterable[str]) -> list[tuple[int, TrialSpec, dict]]:
    """The checked records of a JSONL export (line number, spec, result); RequestErrors listing every bad line."""
    records, problems = [], []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((line_no, *_record(json.loads(line))))
        except json.JSONDecodeError as exc:
            problems.append(("file", f"line {line_no} is not JSON: {exc.msg}"))
        except ValueError as exc:
            problems.append(("file", f"line {line_no}: {exc}"))
    if problems:
        raise RequestErrors(problems, 0)
    return records


def _record(record) -> tuple[TrialSpec, dict]:
    if not isinstance(record, dict) or not {"key", "spec", "result"} <= record.keys():
        raise ValueError("a record is an object with key, spec and result")
    try:
        spec = TrialSpec(**record["spec"])
        result = TrialResult(**record["result"]).model_dump(mode="json")
    except (TypeError, ValidationError) as exc:
        raise ValueError(f"not a trial this labelmix can read ({str(exc).splitlines()[0]})") from None
    if spec.key() != record["key"]:
        raise ValueError(f"its spec does not hash to its key {record['key']!r}: edited, or written by a labelmix "
                         "whose specs differ")
    return spec, result


def import_trials(session: Session, records: list[tuple[int, TrialSpec, dict]]) -> Imported:
    """Store the records' trials as done (in the caller's transaction); each task must be registered
    here, or be a built-in one (registered now)."""
    tasks: dict[str, Task] = {}
    for line_no, spec, _ in records:
        if spec.task not in tasks:
            try:
                tasks[spec.task] = get_or_register_task(session, spec.task)
            except ServiceError as exc:  # unknown here
                raise RequestError("file", f"line {line_no}: {exc.message}") from None
            if tasks[spec.task].source == TaskSource.upload:
                # Its trials measured its rows, which an export does not carry: a same-named upload
                # here may hold other rows under the same keys.
                raise RequestError("file", f"line {line_no}: task {spec.task!r} is an upload; only trials of "
                                   "built-in and hub tasks, whose data every labelmix builds alike, are imported")
    stored = already = carried = 0
    for _, spec, result in records:
        restated = carried_forward(spec, result, len(task_classes(tasks[spec.task])))
        if restated is not None:
            spec, result = restated
            carried += 1
        trial = get_or_create_trial(session, tasks[spec.task], spec)
        if trial.status == TrialStatus.done:
            already += 1
            continue
        ended = done_values(result)
        session.execute(update(Trial).where(Trial.id == trial.id).values(
            **ended, worker=IMPORT_WORKER, started_at=trial.started_at or ended["finished_at"]))
        stored += 1
    for task in tasks.values():
        point_aggregates.refresh(session, task)
    return Imported(stored, already, sorted(tasks), carried)
