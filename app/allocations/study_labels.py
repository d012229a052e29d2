"""What an allocation's Optuna study says about itself in optuna-dashboard.

Always: its objective named, the allocation's id, and on each trial the point it stands for and the
labelmix trials that measure it. Only when the operator opts in (LABELMIX_DESCRIBE_OPTUNA_STUDIES):
a name with the task, model and budget, the request's terms as study attributes and each point's
spend. The dashboard reads one storage for every team, so by default it shows no team's task names,
prices or budgets (issue 29): ids, which the team's own API resolves.
"""

from __future__ import annotations

import warnings

import optuna

from app.allocations.search import Point
from app.config import get_settings
from app.db.models import StudyPoint
from app.stats.prices import Prices

OBJECTIVE = "test accuracy"  # the mean over the point's seeds (allocations tell it)
NAME_PART = 24  # task and model names are cut to this, so a name fits its 100-character column


def described() -> bool:
    return get_settings().describe_optuna_studies


def study_name(task: str, model: str, budget: float, allocation_id: str) -> str:
    """"allocation 3f2c..."; described, e.g. "cities minilm-l6 $64 3f2c...": what and where first, the
    allocation's id for uniqueness."""
    if not described():
        return f"allocation {allocation_id}"
    return f"{task[:NAME_PART]} {model[:NAME_PART]} ${budget:g} {allocation_id}"


def describe_study(study: optuna.Study, task: str, allocation_id: str, request: dict) -> None:
    with warnings.catch_warnings():  # experimental in Optuna 4, and what optuna-dashboard labels its axis with
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE])
    study.set_user_attr("labelmix_allocation", allocation_id)
    if not described():
        return
    study.set_user_attr("task", task)
    for key in ("model", "budget", "weak_cost", "gold_cost", "methods", "seeds", "recipe", "weak_labeler",
                "max_trials"):
        if key in request:
            study.set_user_attr(key, request[key])


def describe_trial(trial: optuna.Trial, point: Point, row: StudyPoint, weak_cost: float, gold_cost: float) -> None:
    trial.set_user_attr("method", point.method.value)
    trial.set_user_attr("n_weak", point.n_weak)
    trial.set_user_attr("n_gold", point.n_gold)
    trial.set_user_attr("labelmix_trial_ids", [t.id for t in row.trials])
    if not described():  # the prices would be read back from the spend
        return
    spend_weak, spend_gold = Prices(weak_cost, gold_cost).spend(point.n_weak, point.n_gold)
    trial.set_user_attr("spend", round(spend_weak + spend_gold, 6))
    trial.set_user_attr("weak_share_of_spend", round(spend_weak / (spend_weak + spend_gold), 4)
                        if spend_weak + spend_gold else 0.0)
