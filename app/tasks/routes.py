"""Tasks: register (built-in, hub data set, or an uploaded file or annotation export) and describe."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy import select

from app.api.deps import SessionDep
from app.api.responses import errors
from app.auth.caller import CallerDep, visible_to
from app.db.models import Task
from app.errors import RequestError
from app.tasks import registry as task_service
from app.tasks import removal as task_removal
from app.tasks.imports import FieldMapping, Format
from app.tasks.schemas import TaskDeletedOut, TaskOut, UploadSummary

router = APIRouter(tags=["tasks"])


@router.post(
    "/tasks",
    response_model=TaskOut,
    status_code=201,
    responses=errors(
        403, 409, 429, described={413: "the file is over LABELMIX_MAX_UPLOAD_BYTES (50 MiB by default)"}
    ),
)
def register_task(
    session: SessionDep,
    caller: CallerDep,
    dataset: Annotated[str | None, Form(description="a built-in task or hub data set, by name")] = None,
    name: Annotated[str | None, Form(description="name of an uploaded task")] = None,
    file: Annotated[
        UploadFile | None,
        File(description="CSV or JSONL (UTF-8): text, label (0/1, whole numbers 0..K-1, or class names), optional "
             "weak_prob (binary), weak_label (+ weak_score) or weak_probs (class -> probability); or a Label Studio "
             "JSON export, an Argilla export, a Parquet file, or a saved Hugging Face dataset zipped (see format). "
             "At most LABELMIX_MAX_UPLOAD_BYTES (50 MiB) and LABELMIX_MAX_UPLOAD_ROWS (100,000 rows) by default"),
    ] = None,
    format: Annotated[
        Format | None,
        Form(description="the file's format; by default its name says (.csv, .jsonl, .parquet, .zip/.tar(.gz) of a "
             "saved dataset, .json: a Label Studio export)"),
    ] = None,
    text_field: Annotated[str | None, Form(description="the text's column (Label Studio: key of data; "
                                                        "Argilla: field); default text, or the only one")] = None,
    label_field: Annotated[str | None, Form(description="the gold label's column (Label Studio: choices control; "
                                                         "Argilla: question); default label, or the only one")] = None,
    weak_field: Annotated[str | None, Form(description="the weak label's column (Label Studio: the model_version "
                                                        "of the predictions to use)")] = None,
    weak_score_field: Annotated[str | None, Form(description="the weak label's confidence column, in [0, 1]")] = None,
    split: Annotated[str | None, Form(description="a saved DatasetDict's split (default train)")] = None,
) -> TaskOut:
    """Register a task by naming a data set (a built-in one is registered here, once; asking again
    returns it), or by uploading rows (validated and stored atomically). A file with problems is
    refused with every problem listed (up to 50, with row numbers); a row repeated exactly is kept
    once, and the answer's `upload` says how many rows were read, kept and dropped."""
    if (dataset is None) == (file is None):
        raise RequestError("file", "give either a dataset name or an uploaded file (with a name)")
    if dataset is not None:
        return TaskOut.model_validate(task_service.register_named(session, dataset))
    if not name:
        raise RequestError("name", "an uploaded task needs a name")
    mapping = FieldMapping(text_field, label_field, weak_field, weak_score_field, split)
    task, rows = task_service.register_upload(session, name, file.file, file.filename or "", caller.team,
                                              format, mapping)
    return TaskOut.model_validate(task).model_copy(update={"upload": UploadSummary(**rows)})


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks(session: SessionDep, caller: CallerDep) -> list[TaskOut]:
    """Built-in and hub tasks, and the caller's team's uploads."""
    query = select(Task).where(visible_to(caller)).order_by(Task.name)
    return [TaskOut.model_validate(t) for t in session.scalars(query)]


@router.get(
    "/tasks/{task}",
    response_model=TaskOut,
    responses=errors(
        described={404: "no such task (for a built-in one not registered yet: how to register it)"}
    ),
)
def get_task(task: str, session: SessionDep, caller: CallerDep) -> TaskOut:
    """A registered task. Reading registers nothing: POST /tasks registers a built-in task."""
    return TaskOut.model_validate(task_service.get_task_row(session, task, caller.team))


@router.delete(
    "/tasks/{task}",
    response_model=TaskDeletedOut,
    responses=errors(
        413,
        described={
            403: "a built-in or hub task: shared by every team, never deleted",
            404: "no such task (or another team's)",
            409: "an allocation on it is queued or running, or a study's trials are",
        }
    ),
)
def delete_task(task: str, session: SessionDep, caller: CallerDep) -> TaskDeletedOut:
    """Delete the team's own uploaded task with everything measured on it: its rows, trials, point
    aggregates, allocations and studies (their Optuna studies too) and its cached weak labels. Refused
    while work on it is queued or running. The name is free again afterwards; the answer counts what went."""
    return TaskDeletedOut(**task_removal.delete_upload(session, task, caller.team))
