"""Request and response bodies for grid studies (the paper's grid for a task)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.results.schemas.frontier import AccuracyInterval, Comparison
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
)
from worker.engine.spec import DEFAULT_RECIPE, Method, Recipe, recipe_params

WeakShare = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class StudyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: TaskName = Field(description="a registered task, or a built-in one")
    model: ModelName = Field("minilm-l6", description="strong model, by name: a packaged one or one the operator allows")
    methods: list[Method] = Field([Method.seq_sft], min_length=1, max_length=5)
    budgets: list[Budget] = Field(min_length=1, max_length=12, description="total spend per point, e.g. [16, 64, 256]")
    weak_shares: list[WeakShare] = Field(
        [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1, max_length=11, description="share of spend on weak labels"
    )
    seeds: list[Seed] = Field(
        [0, 1, 2], min_length=1, max_length=10, description="one trial per point per seed",
        json_schema_extra={"uniqueItems": True},  # distinct_seeds
    )
    weak_cost: Price = Field(0.1, description="price of one weak label")
    gold_cost: Price = Field(1.0, description="price of one gold label")
    recipe: Recipe = Field(DEFAULT_RECIPE, description="training recipe: fast (the default) or paper")
    params: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the recipe's MethodParams", json_schema_extra=document_params
    )
    weak_labeler: WeakLabeler = "default"

    @field_validator("budgets", "weak_shares")
    @classmethod
    def _sorted_once_each(cls, values: list[float]) -> list[float]:
        return sorted(set(values))

    _distinct_seeds = field_validator("seeds")(distinct_seeds)

    @field_validator("methods")
    @classmethod
    def _distinct_methods(cls, methods: list[Method]) -> list[Method]:
        return list(dict.fromkeys(methods))

    @field_validator("params")
    @classmethod
    def _known_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # A ValidationError names a bad one; values come back typed ("2" from a command line is 2).
        validated = recipe_params(info.data.get("recipe", DEFAULT_RECIPE), params)
        return {name: getattr(validated, name) for name in params}


class TrialCounts(BaseModel):
    total: int
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0


class StageDiagnostics(BaseModel):
    rule: str = Field(description="early_stopping or fixed_schedule ('/'-joined if the seeds differ)")
    best_steps: list[int] = Field(description="per done seed: the step whose state the stage kept (0: its start)")
    steps: list[int]


class PointRow(BaseModel):
    budget: float
    weak_share: float = Field(description="the share of spend asked for")
    method: str
    n_weak: int
    n_gold: int
    cost: float
    weak_share_of_spend: float = Field(description="the share the label counts really spend on weak labels")
    trial_ids: list[int]
    seeds_done: int
    seeds_failed: int = Field(description="done seeds that learned nothing at all (test AUROC's 95% interval "
                              "reaches 0.5); seeds trained before the engine said are not counted")
    seeds_errored: int = Field(0, description="trials that ended in an error (no result)")
    accuracy: float | None = Field(None, description="mean test accuracy over the done seeds")
    accuracy_sd: float | None = Field(None, description="standard deviation over seeds (0 with one)")
    accuracy_min: float | None = None
    accuracy_max: float | None = None
    auroc: float | None = None
    predicted_positive_rate: float | None = None
    seeds_split: bool = Field(
        False, description="the done seeds fall into groups: some learned nothing while others learned, or "
        "two seeds' accuracies are further apart than the test sample explains"
    )
    interval: AccuracyInterval | None = Field(None, description="90% interval of the expected accuracy")
    stages: dict[str, StageDiagnostics] = Field(default_factory=dict, description="by stage name: weak, gold")


class SkippedPoint(BaseModel):
    budget: float
    weak_share: float
    method: str
    reason: str


class Contender(BaseModel):
    method: str
    weak_share: float
    n_weak: int
    n_gold: int
    accuracy: float
    accuracy_sd: float
    interval: AccuracyInterval | None = None
    seeds_done: int


class Winner(BaseModel):
    budget: float
    best: Contender | None
    regime: str | None = Field(None, description="all-gold, all-weak or mixed")
    runner_up: Contender | None = None
    gap: float | None = Field(None, description="best minus runner-up mean test accuracy")
    gap_interval: Comparison | None = Field(
        None, description="the gap's interval, paired on the same test examples; tie: true when it holds 0"
    )


class StageSummary(BaseModel):
    gold_stages: int = Field(0, description="gold stages of the done trials")
    kept_start: int = Field(0, description="early-stopping stages that kept their starting state (best_step 0)")
    fixed_schedule: int = Field(0, description="stages too small to validate: trained on a fixed schedule")
    at_first_evaluation: int = Field(0, description="early-stopping stages whose best was the first evaluation")
    past_first_evaluation: int = Field(0, description="early-stopping stages whose best came later")


class StudySummary(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.STUDY_SUMMARY))

    id: str
    task: str
    created_at: datetime
    status: str = Field(description="queued, running, done (no trial left to run) or failed (every trial failed)")
    trials: TrialCounts
    request: dict


class StudyOut(StudySummary):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.STUDY))

    points: list[PointRow]
    skipped: list[SkippedPoint]
    winners: list[Winner]
    stage_summary: StageSummary
    majority_rate: float | None = Field(
        None, description="accuracy of always naming the test set's commonest class: chance (0.5 on a balanced "
        "binary task; the largest class's share for more classes)")
