"""An allocation as a report a person can file: the question it answered (task, model, recipe,
prices, budget), every point it measured with its interval, and the recommendation with the reasons.

`GET /allocations/{id}/report` serves it; `labelmix export` writes it as JSON, CSV or Markdown. The
points are grouped as the recommendation groups them (points.group_trials), so the intervals are
the ones the recommendation was chosen on.
"""

from __future__ import annotations

from app.db.models import Allocation, TrialStatus
from app.results.points import group_trials
from app.stats.prices import Prices


def report(allocation: Allocation) -> dict:
    request, task = allocation.request, allocation.task
    weak_cost, gold_cost = request["weak_cost"], request["gold_cost"]
    done = [t for p in allocation.points for t in p.trials if t.status == TrialStatus.done]
    points = []
    for stats in group_trials({t.id: t for t in done}.values()):
        interval = stats.interval("test")
        points.append({
            "method": stats.method, "n_weak": stats.n_weak, "n_gold": stats.n_gold,
            "cost": round(stats.cost(Prices(weak_cost, gold_cost)), 6), "accuracy": round(stats.accuracy, 4),
            "low": round(interval.low, 4), "high": round(interval.high, 4), "level": interval.level,
            "n_seeds": stats.k, "regime": stats.regime,
        })
    points.sort(key=lambda p: (p["cost"], -p["accuracy"], p["method"]))
    recommendation = allocation.recommendation or {}
    return {
        "allocation": allocation.id,
        "status": allocation.status.value if hasattr(allocation.status, "value") else allocation.status,
        "created_at": allocation.created_at,
        "task": task.shown_name,
        "task_version": task.version,
        "n_test": task.n_test,
        "model": request["model"],
        "recipe": request.get("recipe") or "paper",
        "params": request.get("params") or {},
        "weak_labeler": request.get("weak_labeler"),
        "weak_cost": weak_cost,
        "gold_cost": gold_cost,
        "budget": request["budget"],
        "methods": request["methods"],
        "seeds": request["seeds"],
        "max_trials": request.get("max_trials", allocation.points_total),
        "points": points,
        "recommendation": None if not recommendation else {
            key: recommendation.get(key) for key in (
                "method", "n_weak", "n_gold", "cost", "unspent", "regime", "expected_accuracy",
                "expected_accuracy_interval", "tie", "best", "runner_up", "warnings", "accuracy_note", "search")
        },
        "error": allocation.error,
    }
