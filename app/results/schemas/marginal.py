"""What the next dollars would buy: the gain per extra dollar from more weak vs more gold labels."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.results.schemas.frontier import Comparison, FrontierPoint, SurfaceInfo
from app.schemas import examples as ex
from app.schemas.stored import AsStored


class MarginalStep(BaseModel):
    direction: Literal["weak", "gold"]
    point: FrontierPoint | None = Field(description="the nearest stored neighbour that way (null: none stored)")
    extra_weak: int | None
    extra_gold: int | None
    extra_spend: float | None
    accuracy_gain: float | None = Field(description="neighbour's test accuracy minus the base's (means over seeds)")
    gain_per_dollar: float | None
    noise: float | None = Field(description="the two points' seed spreads combined: a smaller gain may be noise")
    gain_interval: Comparison | None = Field(
        None, description="accuracy_gain with its interval (paired on the same test examples); tie: it holds 0"
    )
    reason: str | None = Field(description="why the gain is null")


class SurfaceStep(BaseModel):
    """`step_dollars` more of one kind of label, as the learning surface predicts it."""

    n_weak: int
    n_gold: int
    extra_labels: int
    gain_per_dollar: float = Field(description="predicted accuracy gain per dollar spent")
    sd: float = Field(description="its posterior sd")


class SurfaceMarginal(AsStored):
    """The learning surface's answer around the base; only `reason` when there is no surface (so the
    other keys are then absent)."""

    n_weak: int | None = Field(None, description="the base's")
    n_gold: int | None = None
    step_dollars: float | None = Field(None, description="extra dollars each way")
    weak: SurfaceStep | None = None
    gold: SurfaceStep | None = None
    difference: float | None = Field(None, description="weak's gain per dollar minus gold's")
    difference_sd: float | None = None
    better: Literal["weak", "gold", "cannot tell"] | None = Field(
        None, description="cannot tell: the difference is within its noise (90%)"
    )
    in_support: bool | None = Field(None, description="false: a step leaves the measured points (extrapolation)")
    surface: SurfaceInfo | None = None
    reason: str | None = Field(description="why there is no surface's answer")


class MarginalOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.MARGINAL))

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
    from_surface: SurfaceMarginal | None = Field(
        None,
        description="the learning surface's answer: predicted gain per dollar of `step_dollars` more weak vs more gold "
        "labels, each with its sd, and `better` (weak, gold, or 'cannot tell' when the difference is within its noise)",
    )
