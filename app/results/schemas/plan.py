"""The cheapest allocation predicted to reach a target accuracy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.allocations.schemas.recommendation import AnswerWarning
from app.results.schemas.frontier import PredictedAllocation, SurfaceInfo
from app.schemas import examples as ex


class PlanOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.PLAN))

    task: str
    model: str | None
    recipe: str | None
    weak_cost: float
    gold_cost: float
    target_accuracy: float
    max_budget: float
    level: float = Field(description="nominal coverage of the band [low, high]")
    confidence: float = Field(description="the least probability of reaching the target the answer was asked to have")
    method: str | None = Field(description="null: no allocation within the evidence is predicted to reach the target")
    n_weak: int | None
    n_gold: int | None
    cost: float | None
    accuracy: float | None = Field(description="predicted mean accuracy of the allocation")
    low: float | None
    high: float | None
    probability: float | None = Field(
        description="probability that the allocation's mean accuracy reaches the target (at least `confidence`)"
    )
    in_support: bool | None
    best_in_support: PredictedAllocation | None = Field(
        description="when the target is out of reach: the best predicted allocation within the evidence"
    )
    predicted: bool = True
    reason: str
    surfaces: list[SurfaceInfo]
    warnings: list[AnswerWarning] = Field(
        description="what to weigh before acting on this plan, each {code, message}"
    )
