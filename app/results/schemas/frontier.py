from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import examples as ex


class AccuracyInterval(BaseModel):
    """An accuracy with its interval (stats/intervals.py says how it is built)."""

    estimate: float
    low: float
    high: float
    level: float = Field(description="nominal coverage of [low, high]")
    se: float
    df: float | None = Field(description="degrees of freedom of the t quantile (null: normal)")
    n_seeds: int
    n_test: int
    seed_sd: float | None = Field(description="seed-to-seed sd used (null: not measured)")
    one_run_low: float = Field(description="range for a single new training run, same level")
    one_run_high: float
    covers: list[str] = Field(description="the sources of noise the interval accounts for")
    note: str | None = None


class Comparison(BaseModel):
    """One accuracy minus another, with its interval (stats/intervals.py compare)."""

    difference: float
    low: float
    high: float
    level: float = Field(description="nominal coverage of [low, high]")
    paired: bool = Field(description="true: paired on the same test examples")
    tie: bool = Field(description="true: the interval holds 0 (the two cannot be told apart)")


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
    recipe: str = ""
    weak_labeler: str = ""
    n_test: int | None = None
    interval: AccuracyInterval | None = Field(
        None, description="the test accuracy's interval over test examples and seeds"
    )
    seeds: list[int]
    seeds_failed: int | None = Field(
        None, description="its seeds that learned nothing at all (test AUROC's 95% interval reaches 0.5); "
        "seeds trained before the engine said are not counted (absent: stored before labelmix reported it)"
    )
    seeds_split: bool | None = Field(
        None, description="its seeds fall into groups: some learned nothing while others learned, or two "
        "seeds' accuracies are further apart than the test sample explains; its mean then describes no seed "
        "(absent: stored before labelmix reported it)"
    )
    trial_ids: list[int]


class PredictedAllocation(BaseModel):
    """An allocation as the learning surface predicts it: not measured."""

    method: str
    n_weak: int
    n_gold: int
    cost: float
    accuracy: float = Field(description="predicted mean accuracy")
    low: float = Field(description="the band's lower end (nominal coverage: the answer's `level`)")
    high: float
    in_support: bool = Field(description="false: outside the measured points (extrapolation)")


class PredictedPoint(PredictedAllocation):
    """The learning surface's best allocation at one budget: predicted, not measured."""

    budget: float
    predicted: bool = True


class RecipeCount(BaseModel):
    recipe: str = Field(description="the recipe's label, as `recipe=` selects it")
    n_trials: int


class LeaveOneOut(BaseModel):
    """How well a learning surface predicts measured points it was not fitted on."""

    model: str = Field(description="the kernel chosen (the lowest rmse among `candidates`)")
    n_points: int = Field(description="points fitted")
    n_measured: int = Field(description="points measured (more than n_points when over 100: evenly spread)")
    rmse: float
    mae: float
    coverage_90: float = Field(description="share of held-out points inside their 90% band")
    n_held_out: int
    candidates: dict[str, float] = Field(description="every kernel tried, by name: its leave-one-out rmse")


class SurfaceInfo(BaseModel):
    method: str
    n_points: int | None
    model: str | None = Field(description="the kernel chosen by leave-one-point-out error")
    loo: LeaveOneOut | None = Field(
        description="leave-one-point-out rmse, mae and 90% coverage over `n_held_out` points; `n_points` fitted of "
        "`n_measured` (evenly spread when there are more than 100)"
    )
    reason: str | None = Field(description="why this method has no surface")


class BudgetRow(BaseModel):
    budget: float
    best: FrontierPoint | None


class FrontierOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.FRONTIER))

    task: str
    model: str | None
    recipe: str | None = Field(description="the recipe of every point here (default: the one with most trials)")
    recipes: list[RecipeCount] = Field(description="every recipe stored for this task, with its number of trials")
    level: float = Field(description="nominal coverage of every interval here")
    weak_cost: float
    gold_cost: float
    points_total: int = Field(description="measured points of this recipe (and model), listed or not")
    points: list[FrontierPoint] = Field(
        description="the measured points, cheapest first: all of them up to `max_points`; beyond it, every point "
                    "in `overall`, `per_method` and `best_at_budget`, then the most accurate others up to `max_points`"
    )
    overall: list[FrontierPoint]
    per_method: dict[str, list[FrontierPoint]]
    best_at_budget: list[BudgetRow]
    predicted: list[PredictedPoint] | None = Field(
        None, description="with predict=true: the learning surface's best allocation at each budget, with a band"
    )
    surfaces: list[SurfaceInfo] | None = None
