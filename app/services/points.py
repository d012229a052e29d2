"""Trials grouped into points (same task, model, method and label counts; several seeds).

Two accuracies stay apart: `selection_accuracy` (first half of the test set) is what choices are
made on; `holdout_accuracy` (second half) is what is reported for the choice, so the reported
figure carries no winner's-curse optimism.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..db.models import Trial


@dataclass
class PointStats:
    method: str
    n_weak: int
    n_gold: int
    model: str
    trial_ids: list[int] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    selection: list[float] = field(default_factory=list)
    holdout: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)

    @property
    def selection_accuracy(self) -> float:
        return statistics.fmean(self.selection)

    @property
    def holdout_accuracy(self) -> float:
        return statistics.fmean(self.holdout)

    @property
    def accuracy(self) -> float:
        return statistics.fmean(self.test)

    @property
    def accuracy_spread(self) -> float:
        """Standard deviation of the test accuracy over seeds (0 with one seed)."""
        return statistics.stdev(self.test) if len(self.test) > 1 else 0.0

    @property
    def holdout_spread(self) -> float:
        return statistics.stdev(self.holdout) if len(self.holdout) > 1 else 0.0

    def cost(self, weak_cost: float, gold_cost: float) -> float:
        return self.n_weak * weak_cost + self.n_gold * gold_cost

    @property
    def regime(self) -> str:
        if self.n_weak == 0:
            return "quality-dominant"
        if self.n_gold == 0:
            return "quantity-dominant"
        return "mixed"

    def summary(self, weak_cost: float, gold_cost: float) -> dict:
        spend_weak, spend_gold = self.n_weak * weak_cost, self.n_gold * gold_cost
        total = spend_weak + spend_gold
        labels = self.n_weak + self.n_gold
        return {
            "method": self.method,
            "model": self.model,
            "n_weak": self.n_weak,
            "n_gold": self.n_gold,
            "spend_weak": round(spend_weak, 6),
            "spend_gold": round(spend_gold, 6),
            "cost": round(total, 6),
            "weak_share_of_labels": round(self.n_weak / labels, 4) if labels else 0.0,
            "weak_share_of_spend": round(spend_weak / total, 4) if total else 0.0,
            "accuracy": round(self.accuracy, 4),
            "accuracy_spread": round(self.accuracy_spread, 4),
            "selection_accuracy": round(self.selection_accuracy, 4),
            "holdout_accuracy": round(self.holdout_accuracy, 4),
            "holdout_spread": round(self.holdout_spread, 4),
            "regime": self.regime,
            "seeds": self.seeds,
            "trial_ids": self.trial_ids,
        }


RecipeKey = tuple[str, str, str, str, str]  # model, method, weak labeler, recipe, params (JSON)


def recipe_key(trial: Trial) -> RecipeKey:
    """What a trial was trained with, apart from its label counts and seed."""
    params = json.dumps((trial.spec or {}).get("params", {}), sort_keys=True)
    return (trial.model, trial.method, trial.weak_labeler, trial.recipe or "", params)


def group_trials(trials: Iterable[Trial]) -> list[PointStats]:
    """Done trials grouped by everything but the seed (seeds pooled)."""
    groups: dict[tuple, PointStats] = {}
    for t in trials:
        if t.status != "done" or t.test_accuracy is None:
            continue
        key = (*recipe_key(t), t.n_weak, t.n_gold)
        point = groups.setdefault(key, PointStats(t.method, t.n_weak, t.n_gold, t.model))
        point.trial_ids.append(t.id)
        point.seeds.append(t.seed)
        point.selection.append(t.selection_accuracy)
        point.holdout.append(t.holdout_accuracy)
        point.test.append(t.test_accuracy)
    return list(groups.values())
