"""Request and response bodies for allocations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationInfo, field_validator

from app.allocations.callback_targets import check_url
from app.allocations.schemas.progress import AllocationProgress
from app.allocations.schemas.recommendation import Recommendation, ReportRecommendation
from app.config import get_settings
from app.schemas import examples as ex
from app.schemas.common import (
    Budget,
    ModelName,
    Price,
    Seed,
    TaskName,
    WeakLabeler,
    distinct_seeds,
    document_params,
    document_stored_params,
)
from app.trials.schemas import TrialOut
from worker.engine.spec import DEFAULT_RECIPE, Method, Recipe, recipe_params

MAX_SWEEP_BUDGETS = 12


# The schema says what _one_budget_or_a_sweep checks: exactly one of a `budget` (a number) and
# `budgets` (a list), so that a client, or a generator of requests, knows a body must have one.
ONE_BUDGET_OR_A_SWEEP = {
    "oneOf": [
        {"required": ["budget"], "properties": {"budget": {"type": "number"}}},
        {"required": ["budgets"], "properties": {"budgets": {"type": "array"}}},
    ]
}


class AllocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_BUDGET_OR_A_SWEEP)

    task: TaskName = Field(description="a registered task, or a built-in one")
    budget: Budget | None = Field(None, description="total spend on labels (or give `budgets` for a sweep)")
    budgets: list[Budget] | None = Field(
        None,
        min_length=1,
        max_length=MAX_SWEEP_BUDGETS,
        validate_default=True,  # so that giving neither budget nor budgets is caught here
        json_schema_extra={"uniqueItems": True},  # what _one_budget_or_a_sweep checks
        description="a sweep: one allocation per budget (1 to 12 distinct values), sharing their trials; "
        "give this or `budget`, not both",
    )
    weak_cost: Price = Field(description="price of one weak label")
    gold_cost: Price = Field(description="price of one gold label")
    methods: list[Method] | None = Field(
        None,
        description="methods to search (default: all the model can run)",
        json_schema_extra={"minItems": 1},  # checked by _no_repeats, whose message says what to do instead
    )
    model: ModelName = Field("minilm-l6", description="strong model, by name: a packaged one or one the operator allows")
    # Before max_trials, whose check of points x seeds reads it.
    seeds: list[Seed] = Field(
        [0, 1], min_length=1, max_length=10, description="trials per point, one per seed",
        json_schema_extra={"uniqueItems": True},  # distinct_seeds
    )
    max_trials: int = Field(
        8, ge=1, le=200,
        description="points (method x weak share) the search evaluates; points x seeds is at most the server's "
        "LABELMIX_MAX_TRIALS_PER_ALLOCATION (default 400)",
    )
    weak_labeler: WeakLabeler = "default"
    recipe: Recipe = Field(DEFAULT_RECIPE, description="training recipe: fast (the default) or paper")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="overrides of the recipe's MethodParams, e.g. max_steps_per_stage",
        json_schema_extra=document_params,
    )
    stop_when_confident: bool = Field(
        True,
        description="once the opening points and two points of the search are measured, ask no more points when "
        "the chance that an untried allocation beats the best measured one by more than a point (or by more than "
        "one trial's scatter between seeds, where that is larger) is below 20%, by a learning curve over weak share "
        "and method fitted to the points so far; max_trials stays the cap. Replayed on six budgets of two tasks it "
        "saved 43% of the trials of a twelve-point search and chose better than running on "
        "(docs/bench/search-replays.md). false: always ask max_trials points. Every finished allocation reports "
        "this verdict in recommendation.search",
    )

    label: str | None = Field(
        None, min_length=1, max_length=200,
        description="a name to find this allocation by later (GET /allocations?label=...); not part of what is "
        "asked, so an identical request with another label is still answered from stored trials",
    )
    callback_url: HttpUrl | None = Field(
        None,
        description="http or https, at a public address (the server's operator may allow internal networks), "
        "with no user name or password; called once (POST, JSON body, signed: X-Labelmix-Signature, key from GET "
        "/webhook-secret) when the allocation ends, done or failed; retried with backoff on failure. In a sweep, "
        "each of its allocations calls it when it ends (the body carries sweep_id)",
    )

    _distinct_seeds = field_validator("seeds")(distinct_seeds)

    @field_validator("max_trials")
    @classmethod
    def _trials_within_the_limit(cls, max_trials: int, info: ValidationInfo) -> int:
        seeds = info.data.get("seeds")
        limit = get_settings().max_trials_per_allocation
        if seeds and max_trials * len(seeds) > limit:
            raise ValueError(
                f"{max_trials} points x {len(seeds)} seeds is {max_trials * len(seeds)} trials, over this "
                f"server's limit of {limit} per allocation: ask for fewer points or seeds"
            )
        return max_trials

    @field_validator("budgets")
    @classmethod
    def _one_budget_or_a_sweep(cls, budgets: list[float] | None, info: ValidationInfo) -> list[float] | None:
        if "budget" not in info.data:
            return budgets  # budget itself was invalid: that error says so
        budget = info.data["budget"]
        if budget is not None and budgets is not None:
            raise ValueError("give either budget (one allocation) or budgets (a sweep), not both")
        if budget is None and budgets is None:
            raise ValueError("give budget (one allocation) or budgets (a sweep of several budgets)")
        if budgets is None:
            return None
        if len(set(budgets)) != len(budgets):
            raise ValueError("budgets must be distinct")
        return sorted(budgets)

    @field_validator("callback_url")
    @classmethod
    def _reachable_callback(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None:
            check_url(str(url), get_settings().callback_allow_networks)
        return url

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


class CallbackOut(BaseModel):
    """Where an allocation's end is told, and how that went (allocations.webhooks)."""

    url: str
    state: Literal["pending", "sending", "delivered", "failed"] = Field(
        description="pending until the allocation ends; sending while attempts are made; then delivered or failed"
    )
    attempts: int = Field(description="POSTs made so far (retried with backoff on 5xx, 429 and no answer)")
    error: str | None = Field(None, description="the last attempt's failure, if any")


class AllocationOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.ALLOCATION, ex.RUNNING_ALLOCATION))

    id: str
    status: str
    sweep_id: str | None = Field(None, description="the sweep this allocation belongs to, if any")
    task: str
    label: str | None = Field(None, description="the name given when it was asked for, if any")
    created_at: datetime | None = None
    request: dict = Field(description="what was asked, as stored: the request with its weak labeler spelled out "
                          "and its methods narrowed to those the budget affords (`budgets`, `label` and "
                          "`callback_url` are kept apart)")
    progress: AllocationProgress
    recommendation: Recommendation | None = Field(None, description="null until the allocation is done")
    error: str | None = None
    callback: CallbackOut | None = Field(None, description="null when no callback_url was given")
    trials: list[TrialOut] = []


class BudgetBest(BaseModel):
    budget: float
    recommendation: Recommendation | None = Field(
        None, description="over every done point of the sweep that costs at most this budget; null while none is done"
    )
    candidate_points: int = Field(0, description="points the recommendation chose among")
    candidate_trial_ids: list[int] = Field([], description="their trials (from any allocation of the sweep)")


class SweepOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.SWEEP))

    id: str
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="done when every allocation is done; failed when all have finished and some failed"
    )
    task: str
    budgets: list[float]
    allocations: list[AllocationOut] = Field(description="one per budget, cheapest first")
    best_at_budget: list[BudgetBest] = Field(description="one per budget, cheapest first")


class ReportPoint(BaseModel):
    """A measured point of an allocation: its mean test accuracy over seeds and the interval around it."""

    method: str
    n_weak: int
    n_gold: int
    cost: float
    accuracy: float
    low: float = Field(description="the interval's lower end (for the point's mean accuracy)")
    high: float
    level: float = Field(description="the interval's coverage, e.g. 0.9")
    n_seeds: int
    regime: str


class AllocationReport(BaseModel):
    """An allocation with the context to read it alone: what was asked, every point, the answer."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.REPORT))

    allocation: str
    status: str = Field(description="queued, running, done or failed")
    created_at: datetime
    task: str
    task_version: int
    n_test: int
    model: str
    recipe: str
    params: dict[str, Any] = Field(description="the overrides of the recipe's MethodParams asked for",
                                   json_schema_extra=document_stored_params)
    weak_labeler: str | None
    weak_cost: float
    gold_cost: float
    budget: float
    methods: list[str]
    seeds: list[int]
    max_trials: int
    points: list[ReportPoint] = Field(description="every measured point, cheapest first")
    recommendation: ReportRecommendation | None = Field(
        description="the recommended point, its expected accuracy and interval, the best and runner-up, "
        "warnings, and what the search used (None until the allocation is done)")
    error: str | None


class AllocationPage(BaseModel):
    """One page of GET /allocations, newest first."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"items": [ex.ALLOCATION], "next_cursor": None}))

    items: list[AllocationOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next page (same filters); null on the last page"
    )
