"""Tasks: register (built-in, hub data set, or uploaded CSV/JSONL) and describe."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy import select

from ...db.models import Task
from ...schemas.tasks import TaskOut
from ...services import tasks as task_service
from ...services.errors import RequestError
from ..deps import SessionDep

router = APIRouter(tags=["tasks"])


@router.post("/tasks", response_model=TaskOut, status_code=201)
def register_task(
    session: SessionDep,
    dataset: Annotated[str | None, Form(description="a built-in task or hub data set, by name")] = None,
    name: Annotated[str | None, Form(description="name of an uploaded task")] = None,
    file: Annotated[UploadFile | None, File(description="CSV or JSONL: text, label, optional weak_prob or weak_label")] = None,
) -> TaskOut:
    """Register a task by naming a data set, or by uploading rows (validated and stored atomically)."""
    if (dataset is None) == (file is None):
        raise RequestError("file", "give either a dataset name or an uploaded file (with a name)")
    if dataset is not None:
        task = task_service.register_named(session, dataset)
    else:
        if not name:
            raise RequestError("name", "an uploaded task needs a name")
        task = task_service.register_upload(session, name, file.file.read(), file.filename or "")
    return TaskOut.model_validate(task)


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks(session: SessionDep) -> list[TaskOut]:
    return [TaskOut.model_validate(t) for t in session.scalars(select(Task).order_by(Task.name))]


@router.get("/tasks/{task}", response_model=TaskOut)
def get_task(task: str, session: SessionDep) -> TaskOut:
    return TaskOut.model_validate(task_service.get_task_row(session, task))
