"""An allocation's Optuna study as optuna-dashboard shows it: described (the operator opted in), named
by task, model and budget, its objective named, the request's terms and each point's labels, spend
and labelmix trials attached; by default, ids and points only."""

from __future__ import annotations

import optuna


def test_by_default_a_study_names_no_task_price_or_budget(monkeypatch):
    from app.allocations import study_labels
    from app.allocations.search import Point
    from app.config import get_settings
    from worker.engine.spec import Method

    monkeypatch.delenv("LABELMIX_DESCRIBE_OPTUNA_STUDIES", raising=False)
    get_settings.cache_clear()
    assert study_labels.study_name("acme-secret-task", "minilm-l6", 640, "a1b2") == "allocation a1b2"
    study = optuna.create_study(direction="maximize")
    request = {"task": "acme-secret-task", "budget": 640, "weak_cost": 0.1, "gold_cost": 1.0}
    study_labels.describe_study(study, "acme-secret-task", "a1b2", request)
    assert study.user_attrs == {"labelmix_allocation": "a1b2"}
    trial = study.ask()

    class Row:
        trials = []

    study_labels.describe_trial(trial, Point(Method.seq_sft, 100, 10), Row(), 0.1, 1.0)
    assert set(study.trials[0].user_attrs) == {"method", "n_weak", "n_gold", "labelmix_trial_ids"}
    get_settings.cache_clear()


def test_an_allocations_study_says_what_it_searched(tmp_path, configure, migrate, monkeypatch):
    monkeypatch.setenv("LABELMIX_DESCRIBE_OPTUNA_STUDIES", "true")
    from test_sweeps import TINY, embedded_allocation

    from app.allocations.search import optuna_storage
    from app.config import get_settings

    request = {"task": "cities", "budget": 12, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
               "max_trials": 4, "seeds": [0], "params": TINY, "weak_labeler": "bow"}
    done = embedded_allocation(tmp_path, configure, migrate, request)
    assert done["status"] == "done", done

    storage = optuna_storage(get_settings().optuna_storage_url)
    (name,) = optuna.get_all_study_names(storage)
    assert name == f"cities minilm-l6 $12 {done['id']}"
    study = optuna.load_study(study_name=name, storage=storage)
    assert study.metric_names == ["test accuracy"]
    assert study.user_attrs["task"] == "cities" and study.user_attrs["budget"] == 12
    assert study.user_attrs["labelmix_allocation"] == done["id"]

    by_id = {t["id"]: t for t in done["trials"]}
    told = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) == done["progress"]["points_done"]
    for trial in told:
        attrs = trial.user_attrs
        (trial_id,) = attrs["labelmix_trial_ids"]
        stored = by_id[trial_id]
        assert (attrs["method"], attrs["n_weak"], attrs["n_gold"]) == (stored["method"], stored["n_weak"],
                                                                      stored["n_gold"])
        assert attrs["spend"] == round(stored["n_weak"] * 0.1 + stored["n_gold"] * 1.0, 6)
        assert trial.value == stored["test_accuracy"]
