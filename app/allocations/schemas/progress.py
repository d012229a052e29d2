"""How far an allocation has got (allocations/lifecycle.progress), its running trials included
(trials/progress.running)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.results.schemas.frontier import FrontierPoint


class TrialStep(BaseModel):
    """The latest progress a running trial's worker reported (with its heartbeat)."""

    stage: str = Field(description="the training stage: weak or gold")
    step: int
    total_steps: int
    val_auroc: float | None = Field(description="on the validation split at the last evaluation (null: none yet)")
    # A string, not a datetime: served as the worker stamped it.
    at: str = Field(description="when it happened (ISO 8601, UTC)", json_schema_extra={"format": "date-time"})


class RunningTrial(BaseModel):
    trial_id: int
    method: str
    n_weak: int
    n_gold: int
    seed: int
    attempt: int = Field(description="how many times a worker has taken it up (more than 1: a worker was lost)")
    progress: TrialStep | None = Field(description="null before its first step")


class AllocationProgress(BaseModel):
    points_total: int = Field(description="the request's max_trials: the most points the search asks")
    points_asked: int
    points_done: int = Field(description="points whose trials have all finished")
    trials_total: int = Field(description="points_total x seeds")
    trials_done: int
    trials_failed: int
    best_so_far: FrontierPoint | None = Field(description="the most accurate done point so far (null: none yet)")
    running: list[RunningTrial] = Field(description="the trials running now, by id")
