"""read_import (app/tasks/imports): the format told from the name, CSV and JSONL exactly as
uploads.read_rows reads them (or through a mapping), and what every reader shares: the streamed
JSON records, the row cap, the majority vote. The formats' own tests are test_imports_*.py."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import RequestError
from app.tasks import uploads
from app.tasks.imports import FieldMapping, guess_format, read_import
from app.tasks.imports import json_records as json_records_module
from app.tasks.imports.json_records import json_items, json_table
from app.tasks.imports.records import majority

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
NO_MAPPING = FieldMapping()
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))  # what a file can hold


def _raises(call, field: str, *says: str) -> RequestError:
    with pytest.raises(RequestError) as caught:
        call()
    assert caught.value.field == field, caught.value.message
    for part in says:
        assert part in caught.value.message, caught.value.message
    return caught.value


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


# --- CSV and JSONL: today's reader -------------------------------------------------------------

CSV_AND_JSONL = {
    "plain.csv": b"text,label\nfine,1\nbad,0\n",
    "weak_prob.csv": "\ufefftext,label,weak_prob,extra\n\"a, b\",1,0.9,x\nc,0,0.2,y\n".encode(),
    "weak_label.csv": b"text,label,weak_label\na,1,1\nb,0,1\n",
    "rows.jsonl": b'{"text": "a", "label": 1, "weak_label": 0}\n\n{"text": "b", "label": 0}\n',
    "rows.ndjson": b'{"text": "a", "label": "pos", "weak_prob": 0.5, "other": [1]}\n',
}


@pytest.mark.parametrize("name", sorted(CSV_AND_JSONL))
def test_csv_and_jsonl_are_read_as_read_rows_reads_them(name):
    data = CSV_AND_JSONL[name]
    imported = read_import(io.BytesIO(data), name, None, NO_MAPPING, 100)
    assert imported.rows == uploads.read_rows(io.BytesIO(data), name, 100)
    assert imported.dropped == {}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fixed_dictionaries({"text": texts.filter(bool),
                                       "label": st.sampled_from(["0", "1", "pos"]),
                                       "weak_prob": st.sampled_from(["", "0.25", "1"])}),
                min_size=1, max_size=8))
def test_any_csv_reads_as_read_rows_reads_it(rows):
    data = _csv(rows)
    assert read_import(io.BytesIO(data), "any.csv", None, NO_MAPPING, 100).rows == \
        uploads.read_rows(io.BytesIO(data), "any.csv", 100)


@pytest.mark.parametrize(("data", "max_rows"), [(b"text,label\na,1\nb,0\nc,1\n", 2),
                                               (b"text,label\n\xff,1\n", 10)])
def test_csv_errors_are_read_rows_errors(data, max_rows):
    expected = _raises(lambda: uploads.read_rows(io.BytesIO(data), "f.csv", max_rows), "file")
    _raises(lambda: read_import(io.BytesIO(data), "f.csv", None, NO_MAPPING, max_rows), "file",
            expected.message)


def test_a_named_format_wins_over_the_file_name():
    data = CSV_AND_JSONL["plain.csv"]
    assert read_import(io.BytesIO(data), "export.txt", "csv", NO_MAPPING, 100).rows == \
        uploads.read_rows(io.BytesIO(data), "export.csv", 100)


def test_a_mapping_renames_csv_columns():
    data = b"body,gold,guess,conf\nhello,pos,neg,0.7\nbye,neg,,\n"
    mapping = FieldMapping(text_field="body", label_field="gold", weak_field="guess", weak_score_field="conf")
    rows = read_import(io.BytesIO(data), "f.csv", None, mapping, 100).rows
    assert [(r.text, r.label, r.weak_prob, r.weak_label, r.weak_score) for r in rows] == [
        ("hello", "pos", None, "neg", "0.7"), ("bye", "neg", None, "", "")]


def test_a_mapping_renames_jsonl_keys_and_names_a_probability_column():
    data = b'{"body": "a", "y": 1, "weak_prob": 0.9}\n{"body": "b", "y": 0, "weak_prob": 0.1}\n'
    rows = read_import(io.BytesIO(data), "f.jsonl", None, FieldMapping("body", "y", "weak_prob"), 100).rows
    assert [(r.text, r.label, r.weak_prob, r.weak_label) for r in rows] == [("a", 1, 0.9, None),
                                                                            ("b", 0, 0.1, None)]


def test_a_mapped_csv_column_that_is_not_there_is_named_with_the_columns():
    data = b"body,gold\nhello,pos\n"
    _raises(lambda: read_import(io.BytesIO(data), "f.csv", None, FieldMapping(text_field="txt"), 100),
            "text_field", "'txt'", "'body', 'gold'")
    _raises(lambda: read_import(io.BytesIO(data), "f.csv", None, FieldMapping(text_field="body"), 100),
            "label_field", "no column 'label'")


def test_a_mapped_csv_keeps_the_row_cap():
    data = b"body,gold\n" + b"x,1\n" * 5
    _raises(lambda: read_import(io.BytesIO(data), "f.csv", None, FieldMapping("body", "gold"), 4), "file",
            "more than 4 rows")


# --- the format ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fmt"), [
    ("a.csv", "csv"), ("A.JSONL", "jsonl"), ("a.ndjson", "jsonl"), ("a.parquet", "parquet"),
    ("a.zip", "hf_disk"), ("a.tar", "hf_disk"), ("a.tar.gz", "hf_disk"), ("a.tgz", "hf_disk"),
    ("label_studio_export.json", "label_studio"), ("label_studio_json_min.json", "label_studio")])
def test_the_format_is_told_by_the_name(name, fmt):
    path = FIXTURES / name
    upload = io.BytesIO(path.read_bytes() if path.exists() else b"")
    assert guess_format(upload, name) == fmt
    assert upload.tell() == 0


def test_a_json_file_that_is_not_label_studios_needs_its_format_named():
    data = (FIXTURES / "argilla_v2_records.jsonl").read_bytes()
    _raises(lambda: read_import(io.BytesIO(data), "records.json", None, NO_MAPPING, 100), "format",
            "--format", "argilla")
    assert read_import(io.BytesIO(data), "records.json", "argilla", NO_MAPPING, 100).rows


@pytest.mark.parametrize("name", ["data.txt", "data", "data.xlsx"])
def test_a_name_that_says_no_format_asks_for_one(name):
    _raises(lambda: read_import(io.BytesIO(b"text,label\n"), name, None, NO_MAPPING, 100), "format",
            repr(name), "--format")


def test_an_unknown_format_is_refused():
    _raises(lambda: read_import(io.BytesIO(b""), "a.csv", "xlsx", NO_MAPPING, 100), "format", "'xlsx'",
            "hf_disk")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "label_studio", "argilla", "parquet"])
def test_a_split_means_something_only_to_a_saved_dataset(fmt):
    _raises(lambda: read_import(io.BytesIO(b""), "a.csv", fmt, FieldMapping(split="train"), 100), "split",
            "hf_disk")


# --- JSON records, streamed ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=80, deadline=None)
@given(items=st.lists(json_values, max_size=6), indent=st.sampled_from([None, 0, 2]), chunk=st.integers(1, 9))
def test_a_json_list_streams_item_by_item_whatever_the_chunks(items, indent, chunk):
    data = json.dumps(items, indent=indent, ensure_ascii=False).encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_records_module, "CHUNK_CHARS", chunk)
        assert list(json_items(io.BytesIO(data), "record")) == items


@pytest.mark.parametrize("chunk", range(1, 13))
def test_a_value_cut_at_a_chunk_end_is_read_whole(monkeypatch, chunk):
    monkeypatch.setattr(json_records_module, "CHUNK_CHARS", chunk)
    data = b'[123456789, 1.5e10, -2.0E-3, 3.25e+10, true, null, "a\\u00e9b", {"k": [1e5]}]'
    assert list(json_items(io.BytesIO(data), "record")) == [123456789, 1.5e10, -2.0e-3, 3.25e10, True, None,
                                                            "a\u00e9b", {"k": [1e5]}]


def test_json_lines_and_a_byte_order_mark_are_read():
    assert list(json_items(io.BytesIO(b'{"a": 1}\n{"a": 2}\n'), "record")) == [{"a": 1}, {"a": 2}]
    assert list(json_items(io.BytesIO('\ufeff [{"a": 1}]'.encode()), "record")) == [{"a": 1}]


@pytest.mark.parametrize(("data", "says"), [
    (b'[{"a": 1}, {"a": 2}, {"a": }]', "task 3 is not valid JSON"),
    (b'[{"a": 1}, {"a": "\xff"}]', "task 2 is not UTF-8 text"),
    (b'[{"a": 1},\n\xff{"a": 2}]', "task 2 is not UTF-8 text"),
    (b'[{"a": 1} {"a": 2}]', "after task 1 where the JSON list needs ',' or ']'"),
    (b'[{"a": 1}, {"a": 2}', "ends after task 2"),
    (b'[{"a": 1}] [2]', "goes on after the end of its JSON list"),
    (b'[{"a": 1}, ' + b"[" * 100_000 + b"]" * 100_000 + b"]", "task 2 is nested too deeply"),
    (b"", "is empty"),
    (b"  \n", "is empty"),
    (b'"a string"', "is neither a JSON list of tasks nor JSON Lines"),
    (b'{"a": 1}\n{"a": \n', "line 2 is not valid JSON"),
])
def test_a_broken_json_file_is_refused_naming_the_record(data, says):
    _raises(lambda: list(json_items(io.BytesIO(data), "task")), "file", says)


def test_a_broken_record_is_refused_without_reading_the_rest():
    class Counted(io.BytesIO):
        read_bytes = 0

        def read(self, size=-1):
            chunk = super().read(size)
            Counted.read_bytes += len(chunk)
            return chunk

    rest = b", ".join([b'{"text": "' + b"x" * 1000 + b'"}'] * 5000)  # 5 MB more
    upload = Counted(b'[{"a": 1}, {"a": }, ' + rest + b"]")
    _raises(lambda: list(json_items(upload, "record")), "file", "record 2 is not valid JSON")
    assert Counted.read_bytes <= 2 * json_records_module.CHUNK_CHARS


def test_the_row_cap_stops_reading_at_the_first_record_over_it():
    # Record 4 is broken: refused for its number, the file is never read that far.
    data = b'[{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}, {"a": }]'
    _raises(lambda: json_table(io.BytesIO(data), "record", 3), "file", "more than 3 rows")
    _raises(lambda: json_table(io.BytesIO(data), "record", 5), "file", "record 5 is not valid JSON")


def test_a_json_table_knows_its_keys_and_which_hold_text():
    data = b'[{"a": "x", "n": 1}, {"a": 2, "b": "y"}]'
    table = json_table(io.BytesIO(data), "record", 10)
    assert (table.columns, table.text_columns) == (["a", "n", "b"], ["a", "b"])
    assert list(table.records(["a"])) == list(table.records([])) == [{"a": "x", "n": 1}, {"a": 2, "b": "y"}]
    _raises(lambda: json_table(io.BytesIO(b'[{"a": 1}, 2]'), "record", 10), "file",
            "record 2 is not a JSON object")


# --- the majority ---------------------------------------------------------------------------------

@given(st.lists(st.sampled_from(["a", "b", "c", 1]), min_size=1))
def test_the_majority_is_the_answer_given_most_and_a_tie_is_said(votes):
    label, tied = majority(votes)
    counts = Counter(votes)
    top = max(counts.values())
    assert counts[label] == top
    assert tied == (sum(1 for c in counts.values() if c == top) > 1)
