"""POST /tasks (uploads and named data sets), GET /tasks and GET /tasks/{name}.

An upload is validated whole before anything is stored: every malformed one gives a 4xx naming
the field and the reason, and leaves the tasks and examples tables as they were.
"""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from worker.engine.weak_labels import quality_warnings

N_PER_CLASS = 15  # the service asks for at least 10 rows of each label


def rows(n_pos: int = N_PER_CLASS, n_neg: int = N_PER_CLASS) -> list[dict]:
    positive = [{"text": f"the film was wonderful, review {i}", "label": 1} for i in range(n_pos)]
    negative = [{"text": f"the film was dreadful, review {i}", "label": 0} for i in range(n_neg)]
    # interleaved, so no split depends on the order
    return [r for pair in zip(positive, negative) for r in pair] + positive[n_neg:] + negative[n_pos:]


def as_csv(records: list[dict], columns: tuple[str, ...] | None = None) -> bytes:
    columns = columns or tuple(dict.fromkeys(k for r in records for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode()


def as_jsonl(records: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode() + b"\n"


def with_weak_probs(records: list[dict]) -> list[dict]:
    # Right on every row but the first three positives (weak_prob 0.2 calls them negative).
    out, wrong = [], 0
    for r in records:
        if r["label"] == 1 and wrong < 3:
            out.append({**r, "weak_prob": 0.2})
            wrong += 1
        else:
            out.append({**r, "weak_prob": 0.9 if r["label"] == 1 else 0.1})
    return out


def wait_for_weak_labels(api, name: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = api.get(f"/tasks/{name}").json()
        if task["weak_labels"] is not None:
            return task
        time.sleep(0.5)
    raise AssertionError(f"the weak labels of {name} were not described within {timeout_s} s")


def upload(api, name: str, content: bytes, filename: str):
    return api.post("/tasks", data={"name": name}, files={"file": (filename, content, "application/octet-stream")})


def test_csv_upload_is_registered_and_described(api, table_counts):
    response = upload(api, "reviews", as_csv(rows()), "reviews.csv")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["name"] == "reviews" and task["source"] == "upload"
    # Every row stored, split into a class-balanced test set and the pool.
    assert task["n_pool"] + task["n_test"] == 2 * N_PER_CLASS
    assert task["n_test"] == 6  # 2 * (15 // 5)
    assert task["test_positive_rate"] == 0.5
    assert task["pool_positive_rate"] == pytest.approx(0.5)
    assert task["has_weak_labels"] is False
    # No weak labels given: the default labeler (a small model fine-tuned on some gold labels) is
    # trained by a worker after the upload commits (unless an earlier run cached them); until then the
    # task says so.
    if task["weak_labels"] is None:
        assert "being built" in task["warnings"][0]
    described = wait_for_weak_labels(api, "reviews")
    assert 0.0 <= described["weak_label_accuracy"] <= 1.0
    assert described["weak_labels"]["labeler"] == "sft:minilm-l3:8000"
    assert described["weak_labels"]["n_labeled"] + described["weak_labels"]["n_labeler_train"] == task["n_pool"]
    task = described
    assert table_counts("tasks", "examples") == {"tasks": 1, "examples": 2 * N_PER_CLASS}

    listed = api.get("/tasks")
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()] == ["reviews"]
    assert listed.json()[0] == task
    one = api.get("/tasks/reviews")
    assert one.status_code == 200 and one.json() == task


def test_jsonl_upload_with_weak_probs(api, sql_on, clean_db):
    records = with_weak_probs(rows())
    response = upload(api, "reviews-weak", as_jsonl(records), "reviews.jsonl")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["has_weak_labels"] is True
    assert task["n_pool"] + task["n_test"] == len(records)
    assert task["test_positive_rate"] == 0.5

    # The stored examples keep each row's text, label and weak_prob ...
    stored = sql_on(clean_db, "SELECT split, text, label, weak_prob FROM examples ORDER BY split, position")
    by_text = {r["text"]: r for r in records}
    assert len(stored) == len(records)
    assert {text for _, text, _, _ in stored} == set(by_text)
    for split, text, label, weak_prob in stored:
        assert label == by_text[text]["label"]
        assert weak_prob == pytest.approx(by_text[text]["weak_prob"])
    # ... and weak_label_accuracy is the uploaded weak labels' accuracy on the pool.
    pool = [(label, weak_prob) for split, _, label, weak_prob in stored if split == "pool"]
    assert len(pool) == task["n_pool"]
    expected = sum((p > 0.5) == bool(y) for y, p in pool) / len(pool)
    assert task["weak_label_accuracy"] == pytest.approx(expected, abs=1e-4)
    assert task["weak_label_accuracy"] < 1.0  # the three wrong rows cannot all sit in the test set

    assert [t["name"] for t in api.get("/tasks").json()] == ["reviews-weak"]


@pytest.mark.both_databases
def test_csv_upload_with_hard_weak_labels(api):
    records = [{**r, "weak_label": r["label"]} for r in rows()]
    response = upload(api, "reviews-hard", as_csv(records), "reviews.csv")
    assert response.status_code == 201, response.text
    assert response.json()["has_weak_labels"] is True
    assert response.json()["weak_label_accuracy"] == 1.0
    assert response.json()["weak_labels"]["labeler"] == "task" and response.json()["warnings"] == []


@pytest.mark.both_databases
def test_uploaded_weak_labels_below_chance_are_warned_about(api):
    records = [{**r, "weak_label": 1 - int(r["label"])} for r in rows()]
    response = upload(api, "reviews-inverted", as_csv(records), "reviews.csv")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["weak_label_accuracy"] == 0.0
    assert len(task["warnings"]) == 1 and "below chance" in task["warnings"][0]


def _bad_row(index: int, **change) -> list[dict]:
    records = rows()
    records[index] = {**records[index], **change}
    return records


def _repeated_text() -> list[dict]:
    records = rows()
    records[5] = {**records[5], "text": records[2]["text"]}
    return records


def _both_weak_columns() -> list[dict]:
    records = with_weak_probs(rows())
    records[0] = {**records[0], "weak_label": 1}
    return records


MALFORMED = {
    # id: (filename, content, field, words the reason must contain)
    # A single 2 among 0s and 1s would be a third class of one row: a typo, said so with its row.
    "label-2-in-one-row": ("bad.csv", as_csv(_bad_row(4, label=2)), "label", ["row 5", "at least 10", "label 2"]),
    "label-name-among-numbers": ("bad.jsonl", as_jsonl(_bad_row(4, label="yes")), "label", ["row 5", "'yes'", "name"]),
    "labels-skip-a-number": ("bad.csv", as_csv([{**r, "label": 2 * r["label"]} for r in rows()]), "label",
                             ["0 to 2", "no row has label 1"]),
    "one-class-only": ("bad.csv", as_csv([{**r, "label": "spam"} for r in rows()]), "label", ["'spam'", "two classes"]),
    "weak-label-not-a-class": (
        "bad.jsonl", as_jsonl([{**r, "weak_label": "maybe" if i == 3 else 1} for i, r in enumerate(rows())]),
        "weak_label", ["row 4", "'maybe'", "not one of the classes"],
    ),
    "missing-text": ("bad.jsonl", as_jsonl(_bad_row(3, text="")), "text", ["row 4", "missing"]),
    "no-text-key": ("bad.jsonl", as_jsonl([{"label": 1}, *rows()]), "text", ["row 1", "missing"]),
    "csv-without-text-column": (
        "bad.csv", as_csv([{"sentence": r["text"], "label": r["label"]} for r in rows()]), "file", ["text", "label"],
    ),
    "weak-prob-above-1": (
        "bad.jsonl", as_jsonl([{**r, "weak_prob": 1.5 if i == 7 else 0.5} for i, r in enumerate(rows())]),
        "weak_prob", ["row 8", "[0, 1]"],
    ),
    "weak-prob-negative": (
        "bad.csv", as_csv([{**r, "weak_prob": -0.1 if i == 0 else 0.5} for i, r in enumerate(rows())]),
        "weak_prob", ["row 1", "[0, 1]"],
    ),
    "bad-json-line": (
        "bad.jsonl", as_jsonl(rows()[:6]) + b'{"text": "oops", "label": 1\n' + as_jsonl(rows()[6:]),
        "file", ["line 7", "not valid JSON"],
    ),
    "json-line-not-an-object": ("bad.jsonl", as_jsonl(rows()[:2]) + b"[1, 2]\n", "file", ["line 3", "JSON object"]),
    "too-few-positives": ("bad.csv", as_csv(rows(n_pos=9, n_neg=20)), "label", ["at least 10", "label 1"]),
    "too-few-negatives": ("bad.jsonl", as_jsonl(rows(n_pos=20, n_neg=3)), "label", ["at least 10", "label 0"]),
    "repeated-text": ("bad.csv", as_csv(_repeated_text()), "text", ["row 6", "repeats", "row 3"]),
    "weak-prob-and-weak-label": ("bad.jsonl", as_jsonl(_both_weak_columns()), "weak_prob", ["not both"]),
    # The name says no format: the format field is what to give (or a name that says one).
    "wrong-extension": ("reviews.txt", as_csv(rows()), "format", ["'reviews.txt'", "csv", "jsonl", "label_studio"]),
    "empty-file": ("empty.jsonl", b"\n\n", "file", ["no rows"]),
    "not-utf8": ("bad.csv", "text,label\ncaf\u00e9,1\n".encode("latin-1"), "file", ["UTF-8"]),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_upload_is_rejected_and_stores_nothing(api, table_counts, case):
    # One good task first: a rejected upload must not disturb what is already there either.
    assert upload(api, "existing", as_csv(rows()), "existing.csv").status_code == 201
    before = table_counts()

    filename, content, field, reason_words = MALFORMED[case]
    response = upload(api, "malformed", content, filename)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == 1
    assert detail[0]["loc"] == ["body", field]
    for word in reason_words:
        assert word in detail[0]["msg"], detail[0]["msg"]
    assert table_counts() == before
    assert api.get("/tasks/malformed").status_code == 404
    assert [t["name"] for t in api.get("/tasks").json()] == ["existing"]


def test_every_problem_of_a_file_is_reported_at_once_with_its_row(api, table_counts):
    before = table_counts()
    records = rows()
    records[1] = {**records[1], "label": 2}
    records[4] = {**records[4], "text": ""}
    records[7] = {**records[7], "label": "yes"}
    records[9] = {**records[9], "text": records[0]["text"]}  # row 1's text under the other label
    response = upload(api, "many-problems", as_csv(records), "bad.csv")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    # Row by row in file order; then the file's own: a class of one row (the 2) is a typo, named by its row.
    assert [(d["loc"], d["msg"].split(":")[0]) for d in detail] == [
        (["body", "text"], "row 5"), (["body", "label"], "row 8"), (["body", "text"], "row 10"),
        (["body", "label"], "needs at least 10 rows with label 2, has 1 (row 2)"),
    ]
    assert "'yes' is a name, where the file's other labels are numbers" in detail[1]["msg"]
    assert "repeats the text of row 1 with another label" in detail[2]["msg"]
    assert table_counts() == before


@pytest.mark.both_databases
def test_the_problems_listed_are_capped_and_the_rest_counted(api):
    records = [{**r, "text": " "} for r in rows(n_pos=40, n_neg=40)]
    response = upload(api, "all-bad", as_jsonl(records), "bad.jsonl")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 51 and detail[49]["msg"].startswith("row 50:")
    assert detail[50] == {"loc": ["body", "file"], "msg": f"and {len(records) - 50:,} more problems not listed",
                          "type": "value_error"}


@pytest.mark.both_databases
def test_rows_repeated_exactly_are_kept_once_and_counted(api):
    records = rows()
    repeated = [*records, records[3], records[3], records[10]]
    response = upload(api, "repeats", as_csv(repeated), "repeats.csv")
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["upload"] == {"rows_read": len(repeated), "rows_kept": len(records), "duplicates_dropped": 3,
                              "left_out": {}}
    assert task["n_pool"] + task["n_test"] == len(records)
    assert api.get("/tasks/repeats").json()["upload"] is None  # said once, in the answer to the upload


@pytest.mark.both_databases
def test_a_text_repeated_with_another_weak_label_is_refused_naming_both_rows(api):
    records = with_weak_probs(rows())
    records.append({**records[4], "weak_prob": 1 - records[4]["weak_prob"] + 0.01})
    response = upload(api, "weak-conflict", as_jsonl(records), "weak.jsonl")
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == (f"row {len(records)}: repeats the text of row 5 with another "
                                                   "weak_prob")


def test_duplicate_name_is_409_and_changes_nothing(api, table_counts):
    assert upload(api, "reviews", as_csv(rows()), "reviews.csv").status_code == 201
    original = api.get("/tasks/reviews").json()
    before = table_counts()

    other = [{"text": f"another text {i}", "label": i % 2} for i in range(40)]
    response = upload(api, "reviews", as_csv(other), "reviews.csv")
    assert response.status_code == 409, response.text
    assert "reviews" in response.json()["detail"] and "already exists" in response.json()["detail"]
    assert table_counts() == before
    assert api.get("/tasks/reviews").json() == original


@pytest.mark.parametrize("reserved", ["cities", "capitals", "boolq"])
def test_reserved_name_is_409(api, table_counts, reserved):
    before = table_counts()
    response = upload(api, reserved, as_csv(rows()), "reviews.csv")
    assert response.status_code == 409, response.text
    assert reserved in response.json()["detail"] and "reserved" in response.json()["detail"]
    assert table_counts() == before


@pytest.mark.parametrize(
    ("form", "with_file", "field"),
    [
        ({"name": "reviews"}, False, "file"),  # neither a dataset nor a file
        ({}, False, "file"),
        ({"dataset": "cities", "name": "reviews"}, True, "file"),  # both
        ({}, True, "name"),  # a file without a name
        ({"name": "Reviews!"}, True, "name"),  # not lowercase letters, digits, _ or -
        ({"name": "x" * 101}, True, "name"),
    ],
    ids=["name-only", "empty-form", "dataset-and-file", "file-without-name", "bad-name", "long-name"],
)
def test_bad_form_is_422_naming_the_field(api, table_counts, form, with_file, field):
    files = {"file": ("reviews.csv", as_csv(rows()), "text/csv")} if with_file else None
    response = api.post("/tasks", data=form, files=files)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", field]
    assert detail[0]["msg"]
    assert table_counts() == {t: 0 for t in table_counts()}


def test_named_builtin_dataset(api, table_counts):
    response = api.post("/tasks", data={"dataset": "cities"})
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["name"] == "cities" and task["source"] == "builtin"
    assert task["n_pool"] > 0 and task["n_test"] > 0
    assert task["version"] == 2  # rebuilt without the shortcuts of version 1
    # How the default weak labels were made and how good they are (built once by the test session).
    weak = task["weak_labels"]
    assert weak["labeler"] == "sft:minilm-l3:8000" and weak["accuracy"] == task["weak_label_accuracy"]
    assert weak["n_labeled"] + weak["n_labeler_train"] == task["n_pool"]
    # Centered on the task's balance: about half labeled positive, as half the statements are true.
    assert abs(weak["labeled_positive_rate"] - 0.5) < 0.01 and 0 <= weak["calibration_error"] <= 0.5
    assert task["warnings"] == weak["warnings"] == quality_warnings(weak["accuracy"], weak["n_labeled"])
    # Built-in tasks are rebuilt by the engine: no example rows are stored for them.
    assert table_counts("tasks", "examples") == {"tasks": 1, "examples": 0}
    # Asking again returns the same task, not a second row.
    again = api.post("/tasks", data={"dataset": "cities"})
    assert again.status_code == 201 and again.json() == task
    assert table_counts("tasks") == {"tasks": 1}
    assert api.get("/tasks").json() == [task]


def test_unknown_dataset_is_422(api, table_counts):
    response = api.post("/tasks", data={"dataset": "no-such-dataset"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "dataset"]
    assert "no-such-dataset" in detail[0]["msg"] and "cities" in detail[0]["msg"]
    assert table_counts("tasks") == {"tasks": 0}


def test_get_registers_nothing_and_unknown_is_404(api, table_counts):
    # A read never registers a built-in task (seconds of CPU and a weak-label job): it says how to.
    assert api.get("/tasks").json() == []
    unregistered = api.get("/tasks/capitals")
    assert unregistered.status_code == 404
    assert "POST /tasks" in unregistered.json()["detail"] and "dataset=capitals" in unregistered.json()["detail"]
    assert table_counts("tasks") == {"tasks": 0}
    assert api.post("/tasks", data={"dataset": "capitals"}).status_code == 201
    response = api.get("/tasks/capitals")
    assert response.status_code == 200
    assert response.json()["source"] == "builtin"
    assert [t["name"] for t in api.get("/tasks").json()] == ["capitals"]

    missing = api.get("/tasks/no-such-task")
    assert missing.status_code == 404
    assert "no-such-task" in missing.json()["detail"]


def test_a_read_does_not_rebuild_a_task_start_up_does(make_api, sql_on, clean_db):
    from worker.engine.tasks import task_version

    api = make_api()
    assert api.post("/tasks", data={"dataset": "capitals"}).status_code == 201
    sql_on(clean_db, "UPDATE tasks SET version = 0 WHERE name = 'capitals'")  # built by an older labelmix
    assert api.get("/tasks/capitals").json()["version"] == 0  # a GET leaves it
    make_api()  # a (re)started service rebuilds it before serving
    assert sql_on(clean_db, "SELECT version FROM tasks WHERE name = 'capitals'") == [(task_version("capitals"),)]
