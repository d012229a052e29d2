"""Annotation exports uploaded through POST /tasks end in a task whose counts match the file: a Label
Studio export, an Argilla export, a Parquet file and a zipped saved Hugging Face dataset. The files
are made here in the shapes tests/fixtures/imports/README.md traces to each project's docs and code,
with enough rows a class for a task (the fixtures there hold a handful)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from test_multiclass_allocation import label_studio_export

pytestmark = pytest.mark.both_databases

TOPICS = ("sports", "science", "business")


def post(api, name: str, filename: str, content: bytes, **form):
    return api.post("/tasks", data={"name": name, **form}, files={"file": (filename, content, "application/octet-stream")})


def argilla_records(n_per_class: int = 12) -> list[dict]:
    """Argilla 2 records as `to_hub` flattens them; every 7th record's responses tie (left out)."""
    out = []
    for i in range(n_per_class * len(TOPICS) + 6):
        topic = TOPICS[i % 3]
        answers = [topic, TOPICS[(i + 1) % 3]] if i % 7 == 6 else [topic, topic]
        out.append({"id": f"rec-{i}", "status": "completed", "text": f"An article about {topic}, {i}.",
                    "topic.responses": answers, "topic.responses.users": ["u1", "u2"],
                    "topic.responses.status": ["submitted", "submitted"],
                    "topic.suggestion": topic, "topic.suggestion.score": 0.7, "topic.suggestion.agent": "zero-shot"})
    return out


def test_a_label_studio_export_becomes_a_task_of_its_tasks(api):
    export = label_studio_export(n_per_class=12)
    export[0]["annotations"].append({**export[0]["annotations"][0], "was_cancelled": True, "result": []})
    export[1]["annotations"] = []  # not annotated yet: left out
    response = post(api, "ls", "export.json", json.dumps(export).encode(), label_field="topic")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["upload"]["rows_kept"] == task["n_pool"] + task["n_test"] == 35
    assert task["upload"]["left_out"] == {"no_annotation": 1}
    assert task["classes"] == ["Business", "Science", "Sports"] and task["has_weak_labels"]


def test_a_label_studio_problem_names_the_task_it_is_in(api, table_counts):
    before = table_counts()
    export = label_studio_export(n_per_class=12)
    export[4]["data"]["text"] = ""
    response = post(api, "ls-bad", "export.json", json.dumps(export).encode(), label_field="topic")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "text"]
    assert detail[0]["msg"].startswith("task 5 (id 5004): text is missing"), detail
    assert table_counts() == before


def test_an_argilla_export_becomes_a_task_of_its_answered_records(api):
    records = argilla_records()
    content = "\n".join(json.dumps(r) for r in records).encode()
    response = post(api, "argilla", "records.jsonl", content, format="argilla")
    assert response.status_code == 201, response.text
    task = response.json()
    tied = sum(1 for i in range(len(records)) if i % 7 == 6)
    assert task["upload"]["left_out"] == {"annotators_tied": tied}
    assert task["upload"]["rows_kept"] == task["n_pool"] + task["n_test"] == len(records) - tied
    assert task["classes"] == sorted(TOPICS)


def test_a_parquet_file_becomes_a_task_with_its_columns_mapped(api):
    table = pa.table({"body": [f"note {i} on {TOPICS[i % 3]}" for i in range(45)],
                      "category": [TOPICS[i % 3] for i in range(45)],
                      "guess": [TOPICS[(i // 4) % 3] for i in range(45)]})
    out = io.BytesIO()
    pq.write_table(table, out)
    response = post(api, "parquet", "notes.parquet", out.getvalue(), text_field="body", label_field="category",
                    weak_field="guess")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["upload"]["rows_kept"] == task["n_pool"] + task["n_test"] == 45
    assert task["classes"] == sorted(TOPICS) and task["has_weak_labels"]


def test_a_zipped_saved_dataset_becomes_a_task_with_its_class_names(api, tmp_path: Path):
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "neutral", "positive"])})
    data = datasets.Dataset.from_dict({"sentence": [f"line {i}" for i in range(36)], "label": [i % 3 for i in range(36)]},
                                      features=features)
    data.save_to_disk(tmp_path / "saved")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (tmp_path / "saved").rglob("*"):
            zipped.write(path, path.relative_to(tmp_path / "saved"))
    response = post(api, "saved", "saved.zip", archive.getvalue(), text_field="sentence")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["upload"]["rows_kept"] == task["n_pool"] + task["n_test"] == 36
    assert task["classes"] == ["negative", "neutral", "positive"]


def test_a_mapping_option_that_names_no_column_is_refused_naming_it(api):
    table = pa.table({"body": ["x"] * 30, "label": [i % 2 for i in range(30)]})
    out = io.BytesIO()
    pq.write_table(table, out)
    response = post(api, "bad-map", "x.parquet", out.getvalue(), text_field="sentence")
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "text_field"] and "'body'" in detail["msg"]


def test_a_class_too_small_is_named_by_the_tasks_that_hold_it(api):
    export = label_studio_export(n_per_class=12)
    rare = [i for i, task in enumerate(export) if task["annotations"][0]["result"][0]["value"]["choices"] == ["Business"]]
    for i in rare[3:]:
        export[i]["annotations"][0]["result"][0]["value"]["choices"] = ["Sports"]
    response = post(api, "ls-small", "export.json", json.dumps(export).encode(), label_field="topic")
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    ids = [export[i]["id"] for i in rare[:3]]
    assert message == (f"needs at least 10 rows with label Business, has 3 (task {rare[0] + 1} (id {ids[0]}), "
                       f"task {rare[1] + 1} (id {ids[1]}), task {rare[2] + 1} (id {ids[2]}))")
