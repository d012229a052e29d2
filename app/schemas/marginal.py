"""What the next dollars would buy: the gain per extra dollar from more weak vs more gold labels."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .frontier import FrontierPoint


class MarginalStep(BaseModel):
    direction: Literal["weak", "gold"]
    point: FrontierPoint | None = Field(description="the nearest stored neighbour that way (null: none stored)")
    extra_weak: int | None
    extra_gold: int | None
    extra_spend: float | None
    accuracy_gain: float | None = Field(description="neighbour's test accuracy minus the base's (means over seeds)")
    gain_per_dollar: float | None
    noise: float | None = Field(description="the two points' seed spreads combined: a smaller gain may be noise")
    gain_interval: dict | None = Field(
        None, description="accuracy_gain with its interval (paired on the same test examples); tie: it holds 0"
    )
    reason: str | None = Field(description="why the gain is null")


class MarginalOut(BaseModel):
    task: str
    model: str | None
    weak_cost: float
    gold_cost: float
    budget: float
    max_extra: float
    direction_share: float
    base: FrontierPoint | None
    more_weak: MarginalStep | None
    more_gold: MarginalStep | None
    better: Literal["weak", "gold"] | None = Field(
        description="the direction with more gain per dollar, when both are known"
    )
    reason: str | None = Field(description="why there is no base allocation")
    recipe: str | None = Field(None, description="the recipe of every point here (default: the one with most trials)")
    from_surface: dict | None = Field(
        None,
        description="the learning surface's answer: predicted gain per dollar of `step_dollars` more weak vs more gold "
        "labels, each with its sd, and `better` (weak, gold, or 'cannot tell' when the difference is within its noise)",
    )
