from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.schemas import examples as ex


class TrialOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.TRIAL))

    id: int
    key: str
    model: str
    method: str
    n_weak: int
    n_gold: int
    seed: int
    weak_labeler: str
    recipe: str | None = None
    task_version: int | None = None
    status: str
    attempts: int
    error: str | None
    test_accuracy: float | None
    selection_accuracy: float | None
    holdout_accuracy: float | None
    test_auroc: float | None
    wall_s: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TrialDetail(TrialOut):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRIAL_DETAIL))

    spec: dict
    result: dict | None
