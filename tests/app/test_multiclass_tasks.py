"""Tasks of more than two classes through the API: uploads with class names or numbers, weak labels
as distributions, the class balance on GET /tasks/{task}, and chance as the commonest class's rate.
Binary uploads keep every answer they gave (tests/app/test_tasks_api.py)."""

from __future__ import annotations

import numpy as np
import pytest

from test_tasks_api import as_csv, as_jsonl, upload

pytestmark = pytest.mark.both_databases

TOPICS = {"sports": 24, "science": 18, "business": 12}  # 54 rows, three classes of unequal size


def topic_rows() -> list[dict]:
    records = [{"text": f"a {topic} story, number {i}", "label": topic} for topic, n in TOPICS.items() for i in range(n)]
    return [records[i] for i in np.random.default_rng(0).permutation(len(records))]


def stored_task(name: str):
    from app.db.models import Task
    from app.db.session import session_scope
    from app.tasks.registry import engine_task
    from sqlalchemy import select

    with session_scope() as session:
        # Stored under the caller's team prefix (app/tasks/names.py).
        row = session.scalars(select(Task).where(Task.name.endswith(f".{name}") | (Task.name == name))).one()
        return engine_task(session, row)


def test_an_upload_with_class_names_is_a_task_of_those_classes(api):
    records = [{**r, "weak_probs": {r["label"]: 0.8, **{t: 0.1 for t in TOPICS if t != r["label"]}}}
               for r in topic_rows()]
    response = upload(api, "news", as_jsonl(records), "news.jsonl")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["classes"] == ["business", "science", "sports"]  # sorted: the label order is the names'
    assert task["pool_positive_rate"] is None and task["test_positive_rate"] is None
    assert task["n_pool"] + task["n_test"] == 54 and task["has_weak_labels"]
    # The test set keeps the file's proportions (business 12/54, science 18/54, sports 24/54).
    assert task["test_class_rates"] == pytest.approx([12 / 54, 18 / 54, 24 / 54], abs=0.1)
    assert api.get("/tasks/news").json()["classes"] == task["classes"]

    engine = stored_task("news")
    assert engine.classes == ("business", "science", "sports") and engine.pool.n_classes == 3
    assert engine.pool.weak_probs.shape == (len(engine.pool), 3)
    assert np.allclose(engine.pool.weak_probs.sum(axis=1), 1.0)
    assert (engine.pool.weak_probs.argmax(axis=1) == engine.pool.labels).all()
    counts = np.bincount(np.concatenate([engine.pool.labels, engine.test.labels]), minlength=3)
    assert counts.tolist() == [12, 18, 24]


def test_numbered_classes_and_a_scored_weak_label(api):
    number = {"business": 0, "science": 1, "sports": 2}
    records = [{"text": r["text"], "label": number[r["label"]], "weak_label": number[r["label"]], "weak_score": 0.7}
               for r in topic_rows()]
    response = upload(api, "numbered", as_csv(records), "numbered.csv")
    assert response.status_code == 201, response.text
    assert response.json()["classes"] == ["0", "1", "2"]
    weak = stored_task("numbered").pool.weak_probs
    assert np.allclose(weak.max(axis=1), 0.7) and np.allclose(weak.min(axis=1), 0.15)


def test_two_named_classes_make_a_binary_task_that_keeps_its_names(api):
    records = [{"text": f"message {i}", "label": "spam" if i % 3 == 0 else "ham"} for i in range(60)]
    response = upload(api, "mail", as_csv(records), "mail.csv")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["classes"] == ["ham", "spam"]
    assert task["test_positive_rate"] == 0.5  # a binary task's test set is balanced, as ever
    engine = stored_task("mail")
    assert engine.classes == ("ham", "spam") and engine.pool.n_classes == 2


def test_a_plain_zero_one_upload_stores_no_class_names(api):
    records = [{"text": f"review {i}", "label": i % 2} for i in range(30)]
    task = upload(api, "plain", as_csv(records), "plain.csv").json()
    assert task["classes"] is None and task["test_class_rates"] is None and task["test_positive_rate"] == 0.5


@pytest.mark.parametrize("weak, field, words", [
    ({"weak_prob": 0.4}, "weak_prob", ["row 1", "binary task", "weak_probs"]),
    ({"weak_probs": {"sports": 0.5, "science": 0.1}}, "weak_probs", ["row 1", "add up to 0.600"]),
    ({"weak_probs": {"cooking": 1.0}}, "weak_probs", ["row 1", "'cooking'", "not one of the classes"]),
    ({"weak_label": "sports", "weak_score": 1.5}, "weak_score", ["row 1", "[0, 1]"]),
])
def test_weak_labels_that_do_not_fit_the_classes_are_refused_naming_the_row(api, table_counts, weak, field, words):
    before = table_counts()
    records = topic_rows()
    records[0] = {**records[0], **weak}
    response = upload(api, "bad-weak", as_jsonl(records), "bad.jsonl")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", field]
    for word in words:
        assert word in detail[0]["msg"], detail[0]["msg"]
    assert table_counts() == before


def test_a_built_in_task_of_five_classes_shows_them_and_its_balance(api):
    response = api.post("/tasks", data={"dataset": "word_categories"})
    assert response.status_code in (200, 201), response.text
    task = response.json()
    assert task["classes"] == ["animal", "plant", "person", "artifact", "food"]
    assert len(task["test_class_rates"]) == 5 and sum(task["test_class_rates"]) == pytest.approx(1.0, abs=1e-4)
    assert task["pool_positive_rate"] is None


def test_chance_is_the_commonest_class_rate():
    from app.db.models import Task
    from app.tasks.registry import majority_rate

    assert majority_rate(Task(test_positive_rate=0.3)) == 0.7
    assert majority_rate(Task(test_positive_rate=None, test_class_rates=[0.2, 0.35, 0.45])) == 0.45
