"""Parquet uploads (app/tasks/imports/parquet.py): columns picked by the mapping or the defaults, a
null label left out and counted, the row cap from the file's metadata, batches."""

from __future__ import annotations

import io
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.errors import RequestError
from app.tasks.imports import FieldMapping, parquet, read_import
from app.tasks.uploads import RawRow

NO_MAPPING = FieldMapping()

def _parquet(table: pa.Table, **options) -> io.BytesIO:
    out = io.BytesIO()
    pq.write_table(table, out, **options)
    out.seek(0)
    return out


def _read(upload, mapping: FieldMapping = NO_MAPPING, max_rows: int = 100):
    return read_import(upload, "labels.parquet", None, mapping, max_rows)


def _raises(upload, field: str, *says: str, mapping: FieldMapping = NO_MAPPING) -> None:
    with pytest.raises(RequestError) as caught:
        _read(upload, mapping)
    assert caught.value.field == field, caught.value.message
    for part in says:
        assert part in caught.value.message, caught.value.message


TABLE = pa.table({
    "id": [1, 2, 3, 4],
    "text": ["great", "awful", "fine", "meh"],
    "label": ["pos", "neg", None, "pos"],
    "weak_label": ["pos", "pos", "neg", None],
    "weak_score": [0.9, 0.6, 0.7, None],
})


def test_the_default_columns_are_read_and_an_unlabeled_row_counted():
    imported = _read(_parquet(TABLE))
    assert imported.rows == [RawRow("great", "pos", None, "pos", None, 0.9),
                             RawRow("awful", "neg", None, "pos", None, 0.6),
                             RawRow("meh", "pos", None, None, None, None)]
    assert imported.dropped == {"no_annotation": 1}
    assert len(imported.rows) + sum(imported.dropped.values()) == TABLE.num_rows


def test_a_mapping_picks_the_columns():
    table = TABLE.rename_columns(["id", "body", "gold", "model", "confidence"])
    mapping = FieldMapping(text_field="body", label_field="gold", weak_field="model",
                           weak_score_field="confidence")
    assert _read(_parquet(table), mapping) == _read(_parquet(TABLE))


def test_a_probability_column_and_a_distribution_are_read_as_such():
    probs = pa.array([[("neg", 0.2), ("pos", 0.8)], [("neg", 0.7), ("pos", 0.3)]],
                     pa.map_(pa.string(), pa.float64()))
    table = pa.table({"text": ["a", "b"], "label": [1, 0], "weak_prob": [0.8, 0.3], "weak_probs": probs})
    assert _read(_parquet(table)).rows == [RawRow("a", 1, 0.8, None, {"neg": 0.2, "pos": 0.8}, None),
                                           RawRow("b", 0, 0.3, None, {"neg": 0.7, "pos": 0.3}, None)]


def test_a_pandas_frame_reads_with_its_missing_labels_left_out():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"text": ["a", "b", "c"], "label": [1.0, float("nan"), 0.0],
                              "topic": pandas.Categorical(["x", "y", "x"])})
    upload = io.BytesIO()
    frame.to_parquet(upload)
    upload.seek(0)
    imported = _read(upload, FieldMapping(weak_field="topic"))
    assert imported.rows == [RawRow("a", 1.0, None, "x", None, None), RawRow("c", 0.0, None, "x", None, None)]
    assert imported.dropped == {"no_annotation": 1}


def test_a_column_that_is_not_there_is_named_with_the_columns():
    _raises(_parquet(TABLE), "weak_field", "no column 'model'",
            "'id', 'text', 'label', 'weak_label', 'weak_score'", mapping=FieldMapping(weak_field="model"))
    _raises(_parquet(TABLE.drop_columns(["text"])), "text_field", "no column 'text': name the column")
    _raises(_parquet(TABLE), "label_field", "names the text column 'text' as the label",
            mapping=FieldMapping(label_field="text"))


def test_the_row_cap_is_checked_before_a_row_is_read(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("rows read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", never)
    with pytest.raises(RequestError) as caught:
        _read(_parquet(TABLE), max_rows=3)
    assert caught.value.field == "file"
    assert caught.value.message == "has more than 3 rows; at most 3 are accepted"


def test_rows_are_read_a_batch_at_a_time_in_order(monkeypatch):
    monkeypatch.setattr(parquet, "BATCH_ROWS", 7)
    n = 50
    table = pa.table({"text": [f"t{i}" for i in range(n)], "label": [i % 3 for i in range(n)],
                      "unused": [b"x" * 10] * n})
    seen = []
    real = pq.ParquetFile.iter_batches

    def spy(self, batch_size, columns):
        seen.append((batch_size, columns))
        return real(self, batch_size=batch_size, columns=columns)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    rows = _read(_parquet(table, row_group_size=16), max_rows=n).rows
    assert [(r.text, r.label) for r in rows] == [(f"t{i}", i % 3) for i in range(n)]
    assert seen == [(7, ["text", "label"])]  # the columns the rows need, no other


def test_the_spooled_upload_is_read_as_it_comes():
    with tempfile.SpooledTemporaryFile(max_size=10) as upload:
        upload.write(_parquet(TABLE).getvalue())
        upload.seek(0)
        assert _read(upload).rows == _read(_parquet(TABLE)).rows


@pytest.mark.parametrize("data", [b"", b"text,label\na,1\n", b"PAR1" + b"\0" * 20])
def test_a_file_that_is_not_parquet_is_refused(data):
    _raises(io.BytesIO(data), "file", "is not a Parquet file")
