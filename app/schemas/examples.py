"""Example response bodies for the OpenAPI document, built from shared parts so that they agree.

One story throughout: task `word_sentiment`, model `minilm-l6`, recipe `fast`, weak labels at $0.10 and
gold at $1, budget $256 (the run README.md describes). tests/app/test_openapi_types.py validates every
example against its schema, so an example that drifts from its model fails there.
"""

from __future__ import annotations

from typing import Any

ALLOCATION_ID = "3f2c9a4e-6b1d-4c8e-9a57-0d2e6f1b7c44"
SWEEP_ID = "b71e0c52-94d3-4a0f-8e26-5c1f3d9a8b07"
STUDY_ID = "8d4b2f16-0c7e-4e59-b3a1-7f6e2d9c0a35"
CREATED_AT = "2026-11-29T02:59:46.125000Z"

INTERVAL: dict[str, Any] = {
    "estimate": 0.889, "low": 0.873, "high": 0.905, "level": 0.9, "se": 0.0097, "df": 58.3, "n_seeds": 2,
    "n_test": 1000, "seed_sd": 0.0042, "one_run_low": 0.868, "one_run_high": 0.91,
    "covers": ["test examples", "training seeds"],
    "note": "two seeds: their spread rests on a single difference, so this interval can cover less than its 90% "
            "(about 82-85% in simulation); more seeds, or other points of its recipe to moderate them, hold the level",
}

POINT: dict[str, Any] = {
    "method": "seq_sft", "model": "minilm-l6", "n_weak": 1280, "n_gold": 128, "spend_weak": 128.0,
    "spend_gold": 128.0, "cost": 256.0, "weak_share_of_labels": 0.9091, "weak_share_of_spend": 0.5,
    "accuracy": 0.889, "accuracy_spread": 0.0042, "selection_accuracy": 0.892, "holdout_accuracy": 0.886,
    "holdout_spread": 0.006, "regime": "mixed", "recipe": "fast", "weak_labeler": "sft:minilm-l3:256",
    "n_test": 1000, "interval": INTERVAL, "seeds": [0, 1], "seeds_failed": 0, "seeds_split": False,
    "trial_ids": [41, 42],
}

GOLD_POINT: dict[str, Any] = {
    **POINT, "n_weak": 0, "n_gold": 256, "spend_weak": 0.0, "spend_gold": 256.0, "weak_share_of_labels": 0.0,
    "weak_share_of_spend": 0.0, "accuracy": 0.861, "selection_accuracy": 0.864, "holdout_accuracy": 0.858,
    "regime": "quality-dominant", "interval": {**INTERVAL, "estimate": 0.861, "low": 0.843, "high": 0.879},
    "trial_ids": [37, 38],
}

COMPARISON: dict[str, Any] = {"difference": 0.028, "low": 0.009, "high": 0.047, "level": 0.9, "paired": True,
                              "tie": False}

STOP_RULE: dict[str, Any] = {
    "confident": True, "margin": 0.0142, "stop_probability": 0.2, "chance_any_beats": 0.131,
    "likeliest_better": {"method": "seq_sft", "n_weak": 1920, "n_gold": 64, "weak_share": 0.75,
                         "probability": 0.064},
    "says": "the chance that an untried allocation beats the best measured one by more than 0.014 is 13.1%, below 20%: "
            "more points are unlikely to change the answer",
}

SEARCH: dict[str, Any] = {"points_asked": 8, "points_cap": 8, "trials_used": 16, "stopped_early": False,
                          "seeds_added": 0, "stop_rule": STOP_RULE}

WARNING: dict[str, Any] = {"code": "few_seeds", "message": INTERVAL["note"]}

RECOMMENDATION: dict[str, Any] = {
    **POINT,
    "expected_accuracy": 0.889, "expected_accuracy_spread": 0.0042, "expected_accuracy_interval": INTERVAL,
    "level": 0.9, "majority_rate": 0.5, "unspent": 0.0,
    "best": {"method": "seq_sft", "n_weak": 1280, "n_gold": 128, "cost": 256.0, "accuracy": 0.889},
    "runner_up": {"method": "seq_sft", "n_weak": 0, "n_gold": 256, "cost": 256.0, "accuracy": 0.861,
                  "best_minus_it": COMPARISON},
    "ties": [], "tie": False, "warnings": [WARNING],
    "accuracy_note": "chosen and measured on the whole test set: the best point, or the cheapest within 0.01 of it; "
                     "90% interval over seeds and test examples (coverage measured: docs/calibration)",
    "search": SEARCH,
}

STORED_REQUEST: dict[str, Any] = {
    "task": "word_sentiment", "budget": 256.0, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
    "model": "minilm-l6", "seeds": [0, 1], "max_trials": 8, "weak_labeler": "sft:minilm-l3:256", "recipe": "fast",
    "params": {},
}

TRIAL: dict[str, Any] = {
    "id": 41, "key": "5b0e1f9c2d7a4e6b8c3f0a1d2e4b6c8f", "model": "minilm-l6", "method": "seq_sft", "n_weak": 1280,
    "n_gold": 128, "seed": 0, "weak_labeler": "sft:minilm-l3:256", "recipe": "fast", "task_version": 1,
    "status": "done", "attempts": 1, "error": None, "test_accuracy": 0.892, "selection_accuracy": 0.894,
    "holdout_accuracy": 0.89, "test_auroc": 0.951, "wall_s": 21.4, "created_at": CREATED_AT,
    "started_at": "2026-11-29T02:59:47Z", "finished_at": "2026-11-29T03:00:09Z",
}

TRIAL_DETAIL: dict[str, Any] = {
    **TRIAL,
    "spec": {"task": "word_sentiment", "model": "minilm-l6", "method": "seq_sft", "n_weak": 1280, "n_gold": 128,
             "seed": 0, "weak_labeler": "sft:minilm-l3:256", "recipe": "fast", "params": {"max_steps_per_stage": 200},
             "task_version": 1},
    "result": {"test_accuracy": 0.892, "selection_accuracy": 0.894, "holdout_accuracy": 0.89, "test_auroc": 0.951,
               "weak_label_accuracy": 0.81},
}

RUNNING_PROGRESS: dict[str, Any] = {
    "points_total": 8, "points_asked": 5, "points_done": 4, "trials_total": 16, "trials_done": 8, "trials_failed": 0,
    "best_so_far": POINT,
    "running": [{"trial_id": 43, "method": "seq_sft", "n_weak": 640, "n_gold": 192, "seed": 0, "attempt": 1,
                 "progress": {"stage": "gold", "step": 120, "total_steps": 200, "val_auroc": 0.93,
                              "at": "2026-11-29T03:01:12+00:00"}}],
}

ALLOCATION: dict[str, Any] = {
    "id": ALLOCATION_ID, "status": "done", "sweep_id": None, "task": "word_sentiment", "label": "q4 sentiment",
    "created_at": CREATED_AT, "request": STORED_REQUEST,
    "progress": {**RUNNING_PROGRESS, "points_asked": 8, "points_done": 8, "trials_done": 16, "running": []},
    "recommendation": RECOMMENDATION, "error": None,
    "callback": {"url": "https://hooks.example.org/labelmix", "state": "delivered", "attempts": 1, "error": None},
    "trials": [TRIAL],
}

RUNNING_ALLOCATION: dict[str, Any] = {**ALLOCATION, "status": "running", "progress": RUNNING_PROGRESS,
                                      "recommendation": None, "trials": []}

SWEEP: dict[str, Any] = {
    "id": SWEEP_ID, "status": "done", "task": "word_sentiment", "budgets": [256.0],
    "allocations": [{**ALLOCATION, "sweep_id": SWEEP_ID}],
    "best_at_budget": [{"budget": 256.0, "recommendation": {k: v for k, v in RECOMMENDATION.items() if k != "search"},
                        "candidate_points": 8, "candidate_trial_ids": [37, 38, 41, 42]}],
}

REPORT: dict[str, Any] = {
    "allocation": ALLOCATION_ID, "status": "done", "created_at": CREATED_AT, "task": "word_sentiment",
    "task_version": 1, "n_test": 1000, "model": "minilm-l6", "recipe": "fast", "params": {},
    "weak_labeler": "sft:minilm-l3:256", "weak_cost": 0.1, "gold_cost": 1.0, "budget": 256.0, "methods": ["seq_sft"],
    "seeds": [0, 1], "max_trials": 8,
    "points": [{"method": "seq_sft", "n_weak": 1280, "n_gold": 128, "cost": 256.0, "accuracy": 0.889, "low": 0.873,
                "high": 0.905, "level": 0.9, "n_seeds": 2, "regime": "mixed"}],
    "recommendation": {key: RECOMMENDATION[key] for key in (
        "method", "n_weak", "n_gold", "cost", "unspent", "regime", "expected_accuracy", "expected_accuracy_interval",
        "tie", "best", "runner_up", "warnings", "accuracy_note", "search")},
    "error": None,
}

WEAK_LABELS: dict[str, Any] = {
    "task": "word_sentiment", "labeler": "sft:minilm-l3:256", "n_labeled": 7744, "n_labeler_train": 256,
    "accuracy": 0.81, "auroc": 0.884, "labeled_positive_rate": 0.47, "gold_positive_rate": 0.5,
    "mean_confidence": 0.83, "calibration_error": 0.041, "build_s": 19.6, "warnings": [],
}

TASK: dict[str, Any] = {
    "name": "word_sentiment", "source": "builtin", "description": "sentiment of single English words (VADER lexicon)",
    "n_pool": 8000, "n_test": 1000, "pool_positive_rate": 0.5, "test_positive_rate": 0.5, "has_weak_labels": False,
    "classes": None, "pool_class_rates": None, "test_class_rates": None,
    "weak_label_accuracy": 0.81, "weak_labels": WEAK_LABELS, "version": 1, "upload": None,
    "created_at": CREATED_AT, "warnings": [],
}

SURFACE: dict[str, Any] = {
    "method": "seq_sft", "n_points": 8, "model": "matern",
    "loo": {"model": "matern", "n_points": 8, "n_measured": 8, "rmse": 0.012, "mae": 0.009, "coverage_90": 0.875,
            "n_held_out": 8, "candidates": {"matern": 0.012, "rbf": 0.015}},
    "reason": None,
}

PREDICTED: dict[str, Any] = {"method": "seq_sft", "n_weak": 1280, "n_gold": 128, "cost": 256.0, "accuracy": 0.887,
                             "low": 0.869, "high": 0.905, "in_support": True}

FRONTIER: dict[str, Any] = {
    "task": "word_sentiment", "model": None, "recipe": "fast", "recipes": [{"recipe": "fast", "n_trials": 16}],
    "level": 0.9, "weak_cost": 0.1, "gold_cost": 1.0, "points_total": 2, "points": [GOLD_POINT, POINT],
    "overall": [POINT], "per_method": {"seq_sft": [POINT]}, "best_at_budget": [{"budget": 256.0, "best": POINT}],
    "predicted": [{**PREDICTED, "budget": 256.0, "predicted": True}], "surfaces": [SURFACE],
}

MARGINAL: dict[str, Any] = {
    "task": "word_sentiment", "model": None, "weak_cost": 0.1, "gold_cost": 1.0, "budget": 256.0, "max_extra": 256.0,
    "direction_share": 0.75, "base": POINT,
    "more_weak": {"direction": "weak", "point": None, "extra_weak": None, "extra_gold": None, "extra_spend": None,
                  "accuracy_gain": None, "gain_per_dollar": None, "noise": None, "gain_interval": None,
                  "reason": "no stored seq_sft trial on minilm-l6 adds weak labels to these 128 gold and 1280 weak "
                            "(at least 75% of the extra spend, at most $256 more)"},
    "more_gold": {"direction": "gold", "point": {**POINT, "n_gold": 256, "spend_gold": 256.0, "cost": 384.0,
                                                 "accuracy": 0.904},
                  "extra_weak": 0, "extra_gold": 128, "extra_spend": 128.0, "accuracy_gain": 0.015,
                  "gain_per_dollar": 0.000117, "noise": 0.006, "gain_interval": {**COMPARISON, "difference": 0.015},
                  "reason": None},
    "better": None, "reason": None, "recipe": "fast",
    "from_surface": {
        "n_weak": 1280, "n_gold": 128, "step_dollars": 64.0,
        "weak": {"n_weak": 1920, "n_gold": 128, "extra_labels": 640, "gain_per_dollar": 0.00004, "sd": 0.00003},
        "gold": {"n_weak": 1280, "n_gold": 192, "extra_labels": 64, "gain_per_dollar": 0.00011, "sd": 0.00004},
        "difference": -0.00007, "difference_sd": 0.00005, "better": "cannot tell", "in_support": True,
        "surface": SURFACE, "reason": None,
    },
}

PLAN: dict[str, Any] = {
    "task": "word_sentiment", "model": None, "recipe": "fast", "weak_cost": 0.1, "gold_cost": 1.0,
    "target_accuracy": 0.88, "max_budget": 256.0, "level": 0.9, "confidence": 0.8, **PREDICTED,
    "probability": 0.83, "best_in_support": None, "predicted": True,
    "reason": "cheapest allocation within the evidence with at least a 80% chance of reaching 0.88",
    "surfaces": [SURFACE], "warnings": [],
}

STUDY_SUMMARY: dict[str, Any] = {
    "id": STUDY_ID, "task": "word_sentiment", "created_at": CREATED_AT, "status": "done",
    "trials": {"total": 4, "queued": 0, "running": 0, "done": 4, "failed": 0},
    "request": {"task": "word_sentiment", "model": "minilm-l6", "methods": ["seq_sft"], "budgets": [256.0],
                "weak_shares": [0.0, 0.5], "seeds": [0, 1], "weak_cost": 0.1, "gold_cost": 1.0, "recipe": "fast",
                "params": {}, "weak_labeler": "sft:minilm-l3:256"},
}

_CONTENDER: dict[str, Any] = {"method": "seq_sft", "weak_share": 0.5, "n_weak": 1280, "n_gold": 128, "accuracy": 0.889,
                              "accuracy_sd": 0.0042, "interval": INTERVAL, "seeds_done": 2}

STUDY: dict[str, Any] = {
    **STUDY_SUMMARY,
    "points": [{"budget": 256.0, "weak_share": 0.5, "method": "seq_sft", "n_weak": 1280, "n_gold": 128, "cost": 256.0,
                "weak_share_of_spend": 0.5, "trial_ids": [41, 42], "seeds_done": 2, "seeds_failed": 0,
                "seeds_errored": 0, "accuracy": 0.889, "accuracy_sd": 0.0042, "accuracy_min": 0.886,
                "accuracy_max": 0.892, "auroc": 0.951, "predicted_positive_rate": 0.49, "seeds_split": False,
                "interval": INTERVAL,
                "stages": {"weak": {"rule": "early_stopping", "best_steps": [180, 160], "steps": [200, 200]},
                           "gold": {"rule": "early_stopping", "best_steps": [40, 60], "steps": [100, 100]}}}],
    "skipped": [],
    "winners": [{"budget": 256.0, "best": _CONTENDER, "regime": "mixed",
                 "runner_up": {**_CONTENDER, "weak_share": 0.0, "n_weak": 0, "n_gold": 256, "accuracy": 0.861},
                 "gap": 0.028, "gap_interval": COMPARISON}],
    "stage_summary": {"gold_stages": 4, "kept_start": 0, "fixed_schedule": 0, "at_first_evaluation": 1,
                      "past_first_evaluation": 3},
    "majority_rate": 0.5,
}


TASK_DELETED: dict[str, Any] = {
    "task": "support-tickets", "rows": 12000, "trials": 96, "allocations": 3, "studies": 1,
}


def examples(*bodies: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A model's `json_schema_extra`: its example bodies, shown in /docs and validated by the tests."""
    return {"examples": list(bodies)}
