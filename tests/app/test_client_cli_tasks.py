"""`labelmix tasks add` against a real service (uvicorn, Postgres; test_client_cli.py runs the other
client commands the same way): a CSV of class names, a Label Studio export read for the control
named with --label-field, a `save_to_disk` folder zipped on the way, and the service's refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
from test_client_cli import labelmix
from test_hostile_uploads import server

__all__ = ["server"]  # a fixture, borrowed: the API as a uvicorn process

TOPICS = ("sports", "politics", "science")


def _url(server) -> str:
    port, _ = server
    return f"http://127.0.0.1:{port}"


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _balance(task: dict) -> str:
    """The classes line as the command prints it, from the service's own answer."""
    shown = ", ".join(f"{c} {r:.0%}" for c, r in zip(task["classes"], task["test_class_rates"]))
    return f"{len(task['classes'])} classes (test set): {shown}; chance {max(task['test_class_rates']):.2f}"


def _choices(control: str, choice: str) -> dict:
    return {"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": [choice]}}


def _ls_task(task_id: int, text: str, *annotations: list[dict]) -> dict:
    return {"id": task_id, "data": {"text": text, "ref_id": task_id},
            "annotations": [{"id": 100 * task_id + i, "result": result, "was_cancelled": False}
                            for i, result in enumerate(annotations)],
            "predictions": []}


def label_studio_export() -> list[dict]:
    """A Label Studio export answering two Choices controls, sentiment and topic (10 tasks of each
    topic), one task its annotators tie on and one nobody annotated (test_dashboard_imports.py too)."""
    tasks = [_ls_task(i + 1, f"a {topic} story, number {i}",
                      [_choices("sentiment", ("Positive", "Negative")[i % 2]), _choices("topic", topic)])
             for i, topic in enumerate(t for _ in range(10) for t in TOPICS)]
    tasks.append(_ls_task(31, "two annotators disagree", [_choices("topic", "sports")],
                          [_choices("topic", "science")]))
    tasks.append(_ls_task(32, "nobody annotated this one"))
    return tasks


def test_a_csv_of_class_names_then_json(server, tmp_path):
    url = _url(server)
    rows = [{"text": f"a {topic} story, number {i}", "label": topic} for i in range(12) for topic in TOPICS]
    path = _write_csv(tmp_path / "news.csv", [*rows, rows[0]])  # one row repeated exactly

    added = labelmix("tasks", "add", path, "--name", "news", "--url", url)

    assert added.exit_code == 0, added.output
    task = httpx.get(f"{url}/tasks/news").json()
    assert task["classes"] == ["politics", "science", "sports"] and task["n_pool"] + task["n_test"] == 36
    lines = added.stdout.splitlines()
    assert lines[0] == (f"task news: {task['n_pool']} pool + {task['n_test']} test examples; 36 of 37 rows kept "
                        "(1 repeated an earlier row exactly)")
    assert lines[1] == _balance(task)
    assert "positive rate" not in added.stdout and "left out" not in added.stdout

    # --json: the service's answer, whole.
    again = labelmix("tasks", "add", path, "--name", "news2", "--url", url, "--json")
    assert again.exit_code == 0, again.output
    answer = json.loads(again.stdout)
    assert answer["name"] == "news2" and answer["classes"] == task["classes"]
    assert answer["upload"] == {"rows_read": 37, "rows_kept": 36, "duplicates_dropped": 1, "left_out": {}}
    assert answer["pool_positive_rate"] is None and len(answer["test_class_rates"]) == 3


def test_a_label_studio_export_read_for_the_control_named(server, tmp_path):
    url = _url(server)
    path = tmp_path / "project-7-at-2024.json"
    path.write_text(json.dumps(label_studio_export()))

    # Two controls are answered: which is the label has to be said.
    unnamed = labelmix("tasks", "add", path, "--name", "topics", "--url", url)
    assert unnamed.exit_code == 1 and "422: label_field:" in unnamed.output, unnamed.output

    added = labelmix("tasks", "add", path, "--name", "topics", "--label-field", "topic", "--url", url)

    assert added.exit_code == 0, added.output
    task = httpx.get(f"{url}/tasks/topics").json()
    assert task["classes"] == ["politics", "science", "sports"]
    assert added.stdout.splitlines() == [
        f"task topics: {task['n_pool']} pool + {task['n_test']} test examples; 30 of 30 rows kept",
        "left out: 2 records (annotators tied 1, no annotation 1)",
        _balance(task),
    ]


def test_a_saved_dataset_folder_is_zipped_and_sent(server, tmp_path):
    import datasets

    url = _url(server)
    folder = tmp_path / "reviews_dataset"
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    data = {"sentence": [f"review {i}: {('awful', 'lovely')[i % 2]}" for i in range(24)],
            "label": [i % 2 for i in range(24)]}
    datasets.Dataset.from_dict(data, features=features).save_to_disk(str(folder))

    added = labelmix("tasks", "add", folder, "--name", "reviews", "--text-field", "sentence", "--url", url)

    assert added.exit_code == 0, added.output
    task = httpx.get(f"{url}/tasks/reviews").json()
    assert task["classes"] == ["neg", "pos"] and task["n_pool"] + task["n_test"] == 24
    assert added.stdout.splitlines() == [
        f"task reviews: {task['n_pool']} pool + {task['n_test']} test examples; 24 of 24 rows kept",
        "classes: neg, pos",
        f"positive rate (pos): pool {task['pool_positive_rate']:.3f}, test {task['test_positive_rate']:.3f}",
    ]
    # A folder is a saved dataset: another format is refused here, before anything is sent.
    other = labelmix("tasks", "add", folder, "--name", "reviews2", "--format", "csv", "--url", url)
    assert other.exit_code == 2 and "hf_disk" in other.output
    assert httpx.get(f"{url}/tasks/reviews2").status_code == 404


def test_a_bad_text_field_prints_the_service_reasons(server, tmp_path):
    url = _url(server)
    rows = [{"body": f"row {i}", "label": i % 2} for i in range(20)]
    path = _write_csv(tmp_path / "rows.csv", rows)

    refused = labelmix("tasks", "add", path, "--name", "rows", "--text-field", "content", "--url", url)

    # As every client command: a refusal prints the service's reasons and exits 1 (no answer: 2).
    assert refused.exit_code == 1, refused.output
    assert "422: text_field: the file has no column 'content'; its columns are 'body', 'label'" in refused.output
    assert httpx.get(f"{url}/tasks/rows").status_code == 404
    assert labelmix("tasks", "add", path, "--name", "rows", "--url", "http://127.0.0.1:9").exit_code == 2


def test_tasks_alone_still_lists_the_builtin_and_hub_tasks():
    listed = labelmix("tasks")
    assert listed.exit_code == 0, listed.output
    assert "cities\tbuilt-in (offline)" in listed.stdout
