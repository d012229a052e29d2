"""CSV and JSON Lines uploads: today's reader (uploads.read_rows, columns text, label, weak_prob,
weak_label) unless a FieldMapping renames a column, then the same files read through the mapping."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from app.errors import RequestError
from app.tasks import uploads
from app.tasks.imports.json_records import json_table
from app.tasks.imports.mapping import Columns, FieldMapping
from app.tasks.imports.records import ImportedRows, Table, capped


def read(upload: BinaryIO, fmt: str, mapping: FieldMapping, max_rows: int) -> ImportedRows:
    if not mapping.renames_columns:
        # read_rows tells the two apart by the file's name; the format named (or guessed) decides here.
        return ImportedRows(uploads.read_rows(upload, f"upload.{fmt}", max_rows), {})
    table = _csv_table(upload, max_rows) if fmt == "csv" else json_table(upload, "line", max_rows)
    columns = Columns.pick(mapping, table.columns)
    # As today, a row is read as it is: one without a label is the validator's to refuse, not dropped.
    return ImportedRows([columns.row(record) for record in table.records(columns.needed)], {})


def _csv_table(upload: BinaryIO, max_rows: int) -> Table:
    try:
        header = csv.DictReader(uploads._utf8_lines(upload)).fieldnames or []
    except csv.Error as exc:
        raise RequestError("file", f"the header line is not valid CSV: {exc}") from None

    def records(_columns: Sequence[str]) -> Iterator[dict]:
        upload.seek(0)
        # Any header: the mapping says which columns it needs.
        yield from capped(uploads.csv_records(csv.DictReader(uploads._utf8_lines(upload))), max_rows)

    return Table(list(header), list(header), records)
