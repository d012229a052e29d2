"""Request and response bodies for allocations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from worker.engine.spec import DEFAULT_RECIPE, Method, Recipe, recipe_params

from .common import distinct_seeds


class AllocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="a registered task, or a built-in one")
    budget: float = Field(gt=0, description="total spend on labels")
    weak_cost: float = Field(gt=0, description="price of one weak label")
    gold_cost: float = Field(gt=0, description="price of one gold label")
    methods: list[Method] | None = Field(None, description="methods to search (default: all the model can run)")
    model: str = Field("minilm-l6", description="strong model: packaged name, local directory or hub id")
    max_trials: int = Field(8, ge=1, le=200, description="points (method x weak share) the search evaluates")
    seeds: list[int] = Field([0, 1], min_length=1, max_length=10, description="trials per point, one per seed")
    weak_labeler: str = "default"
    recipe: Recipe = Field(DEFAULT_RECIPE, description="training recipe: fast (the default) or paper")
    params: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the recipe's MethodParams, e.g. max_steps_per_stage"
    )

    _distinct_seeds = field_validator("seeds")(distinct_seeds)

    @field_validator("methods")
    @classmethod
    def _no_repeats(cls, methods: list[Method] | None) -> list[Method] | None:
        if methods is not None and not methods:
            raise ValueError("give at least one method, or leave methods out")
        return list(dict.fromkeys(methods)) if methods else methods

    @field_validator("params")
    @classmethod
    def _known_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        recipe_params(info.data.get("recipe", DEFAULT_RECIPE), params)  # a ValidationError names a bad one
        return params


class AllocationOut(BaseModel):
    id: str
    status: str
    task: str
    request: dict
    progress: dict
    recommendation: dict | None = None
    error: str | None = None
    trials: list[dict] = []
