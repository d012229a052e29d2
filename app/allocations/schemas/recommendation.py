"""An allocation's recommendation (allocations/recommend.py) and the search's verdict (allocations/verdict.py).

A recommendation is stored as JSON when its allocation finishes, and served as stored (AsStored): the
fields an older labelmix did not write are optional here (None), and stay absent when served.
"""

from __future__ import annotations

from pydantic import Field

from app.results.schemas.frontier import AccuracyInterval, Comparison, FrontierPoint
from app.schemas.stored import AsStored


class AnswerWarning(AsStored):
    """What to weigh before acting on an answer."""

    code: str = Field(description="chance, weak_labels_at_chance, tie, outside_evidence, unstable_point, "
                      "no_elicitation, few_seeds, ...")
    message: str


class PointRef(AsStored):
    """A measured point, named by its label counts, with its cost and mean test accuracy."""

    method: str
    n_weak: int
    n_gold: int
    cost: float
    accuracy: float | None = Field(None, description="mean test accuracy over seeds (absent before intervals)")


class ComparedPointRef(PointRef):
    best_minus_it: Comparison | None = Field(None, description="the best's accuracy minus this point's")


class LikeliestBetter(AsStored):
    """The untried allocation likeliest to beat the best measured one by more than the margin."""

    method: str
    n_weak: int
    n_gold: int
    weak_share: float = Field(description="the share of spend on weak labels the search would ask for")
    probability: float


class StopRule(AsStored):
    """The stop rule's verdict over the done points (allocations/verdict.py)."""

    confident: bool = Field(description="true: the chance that any untried allocation beats the best is below "
                            "`stop_probability`")
    margin: float = Field(description="by how much an untried allocation must beat the best: a point, or one "
                          "trial's scatter between seeds where that is larger")
    stop_probability: float
    chance_any_beats: float | None = None
    likeliest_better: LikeliestBetter | None = Field(None, description="null when every allocation was tried")
    says: str = Field(description="the verdict, in words")


class SearchSummary(AsStored):
    """What the search used of its cap, and what its stop rule concludes."""

    points_asked: int
    points_cap: int = Field(description="the request's max_trials")
    trials_used: int = Field(description="trials done or failed")
    stopped_early: bool | None = Field(None, description="true: stop_when_confident asked no more points")
    seeds_added: int | None = Field(
        None, description="trials added beyond the request's seeds to a leading point whose seeds disagreed "
        "(allocations.unstable_leader); null in answers stored before it existed")
    stop_rule: StopRule | None = Field(description="null before two points are done")


class Recommendation(AsStored, FrontierPoint):
    """The recommended point (its measured summary), its expected accuracy with the interval, the best
    and runner-up, ties, warnings, and (for an allocation) what the search used."""

    expected_accuracy: float
    expected_accuracy_spread: float
    expected_accuracy_interval: AccuracyInterval | None = None
    level: float | None = Field(None, description="nominal coverage of every interval here")
    majority_rate: float | None = Field(None, description="accuracy of always answering the commoner class")
    unspent: float | None = Field(None, description="budget minus the recommendation's cost")
    best: PointRef | None = Field(None, description="the most accurate point (the recommendation may be a cheaper "
                                  "one shown within 0.01 of it)")
    runner_up: ComparedPointRef | None = None
    ties: list[ComparedPointRef] | None = Field(None, description="the points the best cannot be told from")
    tie: bool | None = None
    warnings: list[AnswerWarning] | None = None
    accuracy_note: str
    search: SearchSummary | None = Field(None, description="an allocation's search (not in a sweep's best_at_budget)")


class ReportRecommendation(AsStored):
    """The recommendation as a report shows it: these keys always, null where the stored one lacks them."""

    method: str | None
    n_weak: int | None
    n_gold: int | None
    cost: float | None
    unspent: float | None
    regime: str | None
    expected_accuracy: float | None
    expected_accuracy_interval: AccuracyInterval | None
    tie: bool | None
    best: PointRef | None
    runner_up: ComparedPointRef | None
    warnings: list[AnswerWarning] | None
    accuracy_note: str | None
    search: SearchSummary | None

