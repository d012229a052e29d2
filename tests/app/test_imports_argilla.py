"""Argilla's exports (app/tasks/imports/argilla.py): the Argilla 2 and Argilla 1 fixtures in
tests/fixtures/imports (their shapes: README.md there), as JSON Lines, a JSON list and the Parquet
`datasets` writes for the Hub, and variations of them made here."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import datasets
import pytest

from app.errors import RequestError
from app.tasks.imports import FieldMapping, read_import
from app.tasks.uploads import RawRow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
V2 = [json.loads(line) for line in (FIXTURES / "argilla_v2_records.jsonl").read_text().splitlines()]
V1 = [json.loads(line) for line in (FIXTURES / "argilla_v1_feedback.jsonl").read_text().splitlines()]

NO_MAPPING = FieldMapping()

def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _parquet(records: list[dict]) -> bytes:
    out = io.BytesIO()
    datasets.Dataset.from_list(records).to_parquet(out)  # as push_to_hub writes a dataset's shards
    return out.getvalue()


def _read(data: bytes, mapping: FieldMapping = NO_MAPPING, max_rows: int = 100):
    return read_import(io.BytesIO(data), "export.jsonl", "argilla", mapping, max_rows)


def _raises(data: bytes, field: str, *says: str, mapping: FieldMapping = NO_MAPPING) -> None:
    with pytest.raises(RequestError) as caught:
        _read(data, mapping)
    assert caught.value.field == field, caught.value.message
    for part in says:
        assert part in caught.value.message, caught.value.message


V2_ROWS = [
    RawRow("Sound is warm and the action is low.", "positive", None, "positive", None, 0.8),  # 2 of 3
    RawRow("The bridge cracked after a month.", "negative", None, "negative", None, 0.6),  # a draft: no vote
    RawRow("It is a ukulele.", "neutral", None, None, None, None),  # no suggestion
    RawRow("Tuning pegs slip constantly.", "negative", None, "negative", None, 0.7),  # one: another question
]
V2_DROPPED = {"annotators_tied": 1, "discarded_responses": 1, "draft_responses": 1, "no_annotation": 1}


@pytest.mark.parametrize("encode", [_jsonl, lambda r: json.dumps(r).encode(), _parquet],
                         ids=["jsonl", "json", "parquet"])
def test_an_argilla_2_export_gives_the_submitted_majority_and_the_suggestion(encode):
    imported = _read(encode(V2))
    assert imported.rows == V2_ROWS
    assert imported.dropped == V2_DROPPED
    assert len(imported.rows) + sum(imported.dropped.values()) == len(V2) == 8


V1_ROWS = [
    RawRow("The striker scored twice in the derby.", "sports", None, "sports", None, 0.93),
    RawRow("Inflation eased for a third month.", "economy", None, None, None, None),  # the draft not counted
]
V1_DROPPED = {"annotators_tied": 1, "discarded_responses": 1, "no_annotation": 1}


@pytest.mark.parametrize("encode", [_jsonl, _parquet], ids=["jsonl", "parquet"])
def test_an_argilla_1_feedback_dataset_reads_the_same_way(encode):
    imported = _read(encode(V1))
    assert [r._replace(weak_score=r.weak_score and round(r.weak_score, 4)) for r in imported.rows] == V1_ROWS
    assert imported.dropped == V1_DROPPED
    assert len(imported.rows) + sum(imported.dropped.values()) == len(V1) == 5


def test_argilla_1_responses_kept_as_a_struct_of_lists_are_read():
    records = copy.deepcopy(V1)
    for record in records:
        responses = record["label"]
        record["label"] = {key: [r[key] for r in responses] for key in ("user_id", "value", "status")}
    imported = _read(_jsonl(records))
    assert (imported.rows, imported.dropped) == (V1_ROWS, V1_DROPPED)


def test_naming_the_defaults_reads_the_same():
    assert _read(_jsonl(V2), FieldMapping(text_field="review", label_field="sentiment")) == _read(_jsonl(V2))
    assert _read(_jsonl(V1), FieldMapping(text_field="text", label_field="label")) == _read(_jsonl(V1))


def test_the_text_field_must_be_named_when_several_columns_hold_text():
    # The SDK sets a record's metadata beside its fields: a string one could be the text.
    records = [{**r, "source": "amazon"} for r in V2]
    _raises(_jsonl(records), "text_field", "several columns hold text ('review', 'source')")
    assert _read(_jsonl(records), FieldMapping(text_field="review")).rows == V2_ROWS
    _raises(_jsonl(records), "text_field", "no field 'body'", mapping=FieldMapping(text_field="body"))
    # The server's export prefixes metadata: never a field.
    assert _read(_jsonl([{**r, "metadata.source": "amazon"} for r in V2])).rows == V2_ROWS


def test_the_question_must_be_named_when_there_are_several():
    topic = {"topic.suggestion": "music", "topic.suggestion.score": 0.5, "topic.suggestion.agent": "m"}
    records = [{**r, **topic} for r in V2]
    _raises(_jsonl(records), "label_field", "several questions ('sentiment', 'topic')")
    assert _read(_jsonl(records), FieldMapping(label_field="sentiment")).rows == V2_ROWS
    topic = _read(_jsonl(records), FieldMapping(label_field="topic"))
    assert (topic.rows, topic.dropped) == ([], {"no_annotation": 8})
    _raises(_jsonl(records), "label_field", "no question 'mood'", mapping=FieldMapping(label_field="mood"))


def test_a_multi_label_question_is_refused_naming_the_record():
    records = copy.deepcopy(V2)
    records[1]["sentiment.responses"] = [["negative", "angry"], ["positive"]]
    _raises(_jsonl(records), "label_field", "record 2 (id rec-2)", "not one answer")
    records = copy.deepcopy(V2)
    records[0]["sentiment.suggestion"] = ["positive", "calm"]
    _raises(_jsonl(records), "label_field", "record 1 (id rec-1)", "suggestion")


def test_responses_out_of_step_with_their_statuses_name_the_record():
    records = copy.deepcopy(V2)
    records[2]["sentiment.responses.status"] = ["submitted"]
    _raises(_jsonl(records), "file", "record 3 (id rec-3)", "sentiment.responses.status")
    records = copy.deepcopy(V1)
    records[1]["label"] = "sports"
    _raises(_jsonl(records), "file", "record 2 (id ext-2)", "not a list of responses")


def test_responses_without_statuses_cannot_be_read():
    records = [{k: v for k, v in r.items() if k != "sentiment.responses.status"} for r in V2]
    _raises(_jsonl(records), "file", "no sentiment.responses.status", "drafts")


def test_records_json_from_to_disk_is_refused_for_the_hub_export():
    _raises((FIXTURES / "argilla_v2_to_disk_records.json").read_bytes(), "format", "to_disk", "to_hub")


def test_a_file_that_is_not_argillas_is_refused():
    _raises(b'{"text": "a", "label": 1}\n', "file", "not an Argilla export")
    _raises(b"PAR1 but not parquet", "file", "not a Parquet file")
    _raises(b'[{"review": "a"}, 7]', "file", "record 2 is not a JSON object")
    _raises(_jsonl(V2).replace(b"Returned it", b"Returned \xff it"), "file", "line 6 is not UTF-8 text")


@pytest.mark.parametrize("encode", [_jsonl, _parquet], ids=["jsonl", "parquet"])
def test_too_many_records_are_refused(encode):
    with pytest.raises(RequestError) as caught:
        _read(encode(V2), max_rows=7)
    assert caught.value.field == "file"
    assert caught.value.message == "has more than 7 rows; at most 7 are accepted"


@pytest.mark.parametrize("option", ["weak_field", "weak_score_field"])
def test_the_suggestion_is_the_weak_label(option):
    _raises(_jsonl(V2), option, "Argilla", mapping=FieldMapping(**{option: "x"}))
