"""Label Studio's JSON export (app/tasks/imports/label_studio.py), from the fixture in
tests/fixtures/imports (its shape: README.md there) and variations of it made here."""

from __future__ import annotations

import copy
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import RequestError
from app.tasks.imports import FieldMapping, read_import
from app.tasks.uploads import RawRow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
EXPORT = json.loads((FIXTURES / "label_studio_export.json").read_text())

NO_MAPPING = FieldMapping()

def _read(tasks: object, mapping: FieldMapping = NO_MAPPING, max_rows: int = 100, raw: bytes | None = None):
    data = json.dumps(tasks).encode() if raw is None else raw
    return read_import(io.BytesIO(data), "export.json", "label_studio", mapping, max_rows)


def _raises(tasks: object, field: str, *says: str, mapping: FieldMapping = NO_MAPPING,
            raw: bytes | None = None) -> None:
    with pytest.raises(RequestError) as caught:
        _read(tasks, mapping, raw=raw)
    assert caught.value.field == field, caught.value.message
    for part in says:
        assert part in caught.value.message, caught.value.message


def _task(task_id: int) -> dict:
    return copy.deepcopy(next(t for t in EXPORT if t["id"] == task_id))


def _choice(control: str, *choices: str) -> dict:
    return {"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": list(choices)}}


def test_the_export_gives_majority_gold_and_the_models_weak_labels():
    imported = _read(EXPORT)
    assert imported.rows == [
        RawRow("The strings arrived tuned and the case is sturdy.", "Positive", None, "Positive", None, 0.91),
        # The result's own score, not its prediction's:
        RawRow("Two keys stopped working within a week.", "Negative", None, "Negative", None, 0.35),
        RawRow("A capo, a strap and a cloth.", "Neutral", None, None, None, None),  # 1 cancelled, 1 answer
        RawRow("The tuner broke the first time I dropped it.", "Negative", None, "Negative", None, 0.77),
    ]
    # 4003: 1-1; 4004: its one annotation cancelled; 4005: none; 4007: a comment, no choice.
    assert imported.dropped == {"annotators_tied": 1, "cancelled_annotations": 1, "no_annotation": 2}
    assert len(imported.rows) + sum(imported.dropped.values()) == len(EXPORT) == 8


def test_naming_the_defaults_reads_the_same():
    named = FieldMapping(text_field="text", label_field="sentiment", weak_field="sentiment-v1")
    assert _read(EXPORT, named) == _read(EXPORT)


def test_the_text_key_must_be_named_when_the_data_holds_several_texts():
    tasks = copy.deepcopy(EXPORT)
    tasks[3]["data"]["audio"] = "s3://bucket/4004.wav"
    _raises(tasks, "text_field", "several keys hold text ('text', 'audio')", "name the key")
    named = _read(tasks, FieldMapping(text_field="text"))
    assert [r.text for r in named.rows] == [r.text for r in _read(EXPORT).rows]
    _raises(tasks, "text_field", "no task's data has the key 'body'",
            "'text', 'ref_id', 'meta_info', 'audio'", mapping=FieldMapping(text_field="body"))
    _raises([{**t, "data": {"ref_id": 1}} for t in EXPORT], "text_field", "no key holds text")


def test_the_control_must_be_named_when_several_are_answered():
    tasks = copy.deepcopy(EXPORT)
    tasks[0]["annotations"][0]["result"].append(_choice("topic", "Hardware"))
    tasks[1]["annotations"][0]["result"].append(_choice("topic", "Shipping"))
    _raises(tasks, "label_field", "several Choices controls ('sentiment', 'topic')")
    topic = _read(tasks, FieldMapping(label_field="topic"))
    assert [(r.label, r.weak_label) for r in topic.rows] == [("Hardware", None), ("Shipping", None)]
    assert topic.dropped == {"no_annotation": 5, "cancelled_annotations": 1}
    _raises(tasks, "label_field", "named 'mood'", "'sentiment', 'topic'",
            mapping=FieldMapping(label_field="mood"))


def test_an_export_without_choices_cannot_be_imported():
    tasks = [_task(4007)]
    _raises(tasks, "label_field", "no annotation or prediction answers a Choices control")


def test_several_choices_in_one_annotation_name_the_task():
    tasks = copy.deepcopy(EXPORT)
    tasks[1]["annotations"][0]["result"] = [_choice("sentiment", "Negative", "Neutral")]
    _raises(tasks, "label_field", "task 2 (id 4002)", "annotation 1004 picks 2 choices",
            "'Negative', 'Neutral'")


def test_the_weak_labels_come_from_one_model_version():
    tasks = copy.deepcopy(EXPORT)
    tasks[2]["predictions"].append({"model_version": "sentiment-v2", "score": 0.6,
                                    "result": [_choice("sentiment", "Neutral")]})
    _raises(tasks, "weak_field", "several model versions", "'sentiment-v1', 'sentiment-v2'")
    v2 = _read(tasks, FieldMapping(weak_field="sentiment-v2"))
    assert [r.weak_label for r in v2.rows] == [None] * 4  # the tied task 4003 is the one v2 predicted on
    v1 = _read(tasks, FieldMapping(weak_field="sentiment-v1"))
    assert v1 == _read(EXPORT)
    _raises(tasks, "weak_field", "no prediction of model version 'v9'", mapping=FieldMapping(weak_field="v9"))
    _raises([_task(4006)], "weak_field", "no prediction picks a choice", mapping=FieldMapping(weak_field="x"))


def test_two_predicted_choices_of_one_version_name_the_task():
    tasks = copy.deepcopy(EXPORT)
    tasks[0]["predictions"].append({"model_version": "sentiment-v1",
                                    "result": [_choice("sentiment", "Negative")]})
    _raises(tasks, "weak_field", "task 1 (id 4001)", "pick 2 choices", "'Positive', 'Negative'")


def test_predictions_exported_as_ids_only_give_no_weak_label():
    task = _task(4001)
    task["predictions"] = [2001]
    assert _read([task]).rows == [RawRow(task["data"]["text"], "Positive", None, None, None, None)]


def test_json_min_is_refused_for_the_full_export():
    data = (FIXTURES / "label_studio_json_min.json").read_bytes()
    _raises(None, "format", "JSON_MIN", "Export the project as JSON", raw=data)
    _raises(None, "format", "JSON_MIN", raw=data, mapping=FieldMapping(text_field="text"))


@pytest.mark.parametrize(("change", "says"), [
    (lambda t: t.pop("data"), "task 2 (id 4002) has no data object"),
    (lambda t: t.update(data="just text"), "task 2 (id 4002) has no data object"),
    (lambda t: t.pop("annotations"), "task 2 (id 4002) has no list of annotations"),
    (lambda t: t.update(annotations=["done"]), "task 2 (id 4002) has an annotation that is not an object"),
    (lambda t: t["annotations"][0].update(result={"choices": ["Negative"]}), "task 2 (id 4002) has a result"),
    (lambda t: t["annotations"][0]["result"][0]["value"].update(choices="Negative"),
     "task 2 (id 4002) has a choices result without"),
    (lambda t: t["annotations"][0]["result"][0]["value"].update(choices=[{"x": 1}]),
     "task 2 (id 4002) has a choice that is not a string"),
    (lambda t: t.update(predictions={"result": []}), "task 2 (id 4002) has predictions that are not a list"),
])
def test_a_task_of_the_wrong_shape_is_named(change, says):
    tasks = copy.deepcopy(EXPORT)
    change(tasks[1])
    _raises(tasks, "file", says)


@pytest.mark.parametrize(("raw", "says"), [
    (b'["a task"]', "task 1 has no data object"),
    (b"[]", "has no tasks"),
    (b'{"id": 1,\n "data": {}}', "line 1 is not valid JSON"),
    (json.dumps(EXPORT[:2]).encode().replace(b"Two keys", b"Two \xff keys"), "task 2 is not UTF-8 text"),
])
def test_a_file_that_is_not_an_export_is_refused(raw, says):
    _raises(None, "file", says, raw=raw)


def test_too_many_tasks_are_refused():
    with pytest.raises(RequestError) as caught:
        _read(EXPORT, max_rows=7)
    assert caught.value.field == "file"
    assert caught.value.message == "has more than 7 rows; at most 7 are accepted"
    assert len(_read(EXPORT, max_rows=8).rows) == 4


def test_a_score_column_means_nothing_to_label_studio():
    _raises(EXPORT, "weak_score_field", "Label Studio", mapping=FieldMapping(weak_score_field="score"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.booleans()), max_size=4),
                max_size=12))
def test_every_task_is_a_row_or_counted_once(answers):
    # (choice, cancelled) per annotation; the first task makes sure the control is answered somewhere.
    answers = [[("A", False)], *answers]
    tasks = [{"id": 100 + i, "data": {"text": f"text {i}"}, "predictions": [],
              "annotations": [{"id": j, "was_cancelled": cancelled, "result": [] if cancelled else
                               [_choice("sentiment", choice)]} for j, (choice, cancelled) in enumerate(task)]}
             for i, task in enumerate(answers)]
    expected_rows, expected_dropped = [], Counter()
    for i, task in enumerate(answers):
        kept = Counter(choice for choice, cancelled in task if not cancelled)
        ranked = kept.most_common()
        if not ranked:
            expected_dropped["cancelled_annotations" if task else "no_annotation"] += 1
        elif len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            expected_dropped["annotators_tied"] += 1
        else:
            expected_rows.append((f"text {i}", ranked[0][0]))
    imported = _read(tasks)
    assert [(r.text, r.label) for r in imported.rows] == expected_rows
    assert imported.dropped == dict(expected_dropped)
