from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    source: str
    description: str
    n_pool: int
    n_test: int
    pool_positive_rate: float
    test_positive_rate: float
    has_weak_labels: bool
    weak_label_accuracy: float | None
    created_at: datetime
