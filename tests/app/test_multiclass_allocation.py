"""An annotation team's Label Studio export of three classes, uploaded as it is, then allocated on
through the service (embedded: a SQLite file, trials in the API process): the done-when of issue 31's
"an allocation on one of them completes through the service"."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from test_embedded import TINY, finished

TOPICS = ("Sports", "Science", "Business")


def label_studio_export(n_per_class: int = 40) -> list[dict]:
    """Tasks in the JSON export's shape (tests/fixtures/imports/README.md): one completed annotation
    each (the gold label), and a model's prediction with its score (the weak label), right 3 times in 4."""
    tasks = []
    for i in range(n_per_class * len(TOPICS)):
        topic = TOPICS[i % len(TOPICS)]
        guess = topic if i % 4 else TOPICS[(i + 1) % len(TOPICS)]
        tasks.append({
            "id": 5000 + i,
            "data": {"text": f"A {topic.lower()} story, number {i}: what happened today."},
            "annotations": [{"id": 9000 + i, "completed_by": 1, "was_cancelled": False, "result": [
                {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [topic]}}]}],
            "predictions": [{"model_version": "v1", "score": 0.6, "result": [
                {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [guess]}}]}],
        })
    return tasks


def test_a_label_studio_export_of_three_classes_is_allocated_on(tmp_path, configure, migrate):
    url = f"sqlite:///{tmp_path / 'labelmix.sqlite'}"
    migrate(url)
    configure(url)
    from app.main import create_app

    export = json.dumps(label_studio_export()).encode()
    with TestClient(create_app()) as api:
        response = api.post("/tasks", data={"name": "topics", "label_field": "topic"},
                            files={"file": ("project-7-at-2026-12-06.json", export, "application/json")})
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["classes"] == ["Business", "Science", "Sports"]
        assert task["upload"]["rows_kept"] == task["n_pool"] + task["n_test"] == 120
        assert task["has_weak_labels"] and task["test_class_rates"] == pytest.approx([1 / 3] * 3, abs=1e-6)

        request = {"task": "topics", "budget": 8, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"],
                   "max_trials": 4, "seeds": [0], "weak_labeler": "task", "params": TINY}
        response = api.post("/allocate", json=request)
        assert response.status_code == 202, response.text
        allocation = finished(api, response.json()["id"], timeout_s=600)
        assert allocation["status"] == "done", allocation
        recommendation = allocation["recommendation"]
        assert recommendation["majority_rate"] == pytest.approx(1 / 3, abs=1e-4)  # chance is the commonest class's rate
        assert recommendation["n_gold"] + recommendation["n_weak"] > 0
        frontier = api.get("/frontier/topics", params={"weak_cost": 0.1, "gold_cost": 1.0})
        assert frontier.status_code == 200 and frontier.json()["points"], frontier.text
        # The reads that follow the frontier work unchanged on three classes: the plan and the marginal.
        prices = {"weak_cost": 0.1, "gold_cost": 1.0}
        plan = api.get("/plan/topics", params={**prices, "target_accuracy": 0.5})
        assert plan.status_code == 200, plan.text
        marginal = api.get("/frontier/topics/marginal", params={**prices, "budget": 8})
        assert marginal.status_code == 200, marginal.text
