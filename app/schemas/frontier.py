from __future__ import annotations

from pydantic import BaseModel


class FrontierPoint(BaseModel):
    method: str
    model: str
    n_weak: int
    n_gold: int
    spend_weak: float
    spend_gold: float
    cost: float
    weak_share_of_labels: float
    weak_share_of_spend: float
    accuracy: float
    accuracy_spread: float
    selection_accuracy: float
    holdout_accuracy: float
    holdout_spread: float
    regime: str
    seeds: list[int]
    trial_ids: list[int]


class BudgetRow(BaseModel):
    budget: float
    best: FrontierPoint | None


class FrontierOut(BaseModel):
    task: str
    model: str | None
    weak_cost: float
    gold_cost: float
    points: list[FrontierPoint]
    overall: list[FrontierPoint]
    per_method: dict[str, list[FrontierPoint]]
    best_at_budget: list[BudgetRow]
