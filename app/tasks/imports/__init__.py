"""Importing annotation tools' exports (issue 31): a file in one of FORMATS turned into the rows the
upload validator (app/tasks/uploads.py) checks, with the records left out on purpose counted.

One module a format: `delimited` (CSV and JSONL, as uploads reads them), `label_studio`, `argilla`,
`parquet`, `hf_disk` (a saved Hugging Face dataset, zipped); `mapping` says which fields are read,
`records` and `json_records` are what they share. Nothing is stored here: a file is read whole or
refused with a RequestError naming the option or the record at fault.
"""

from __future__ import annotations

from contextlib import closing
from typing import BinaryIO, Literal, get_args

from app.config import get_settings
from app.errors import RequestError
from app.tasks.imports import argilla, delimited, hf_disk, label_studio, parquet
from app.tasks.imports.json_records import json_items
from app.tasks.imports.mapping import FieldMapping
from app.tasks.imports.records import ImportedRows

__all__ = ["FORMATS", "FieldMapping", "Format", "ImportedRows", "guess_format", "read_import"]

Format = Literal["csv", "jsonl", "label_studio", "argilla", "parquet", "hf_disk"]
FORMATS: tuple[str, ...] = get_args(Format)
# How much an archive may unpack to, per byte an upload may have: room for Arrow files, which deflate
# only a few times smaller, and none for a zip bomb, which deflates thousands of times smaller.
UNPACKED_PER_UPLOAD_BYTE = 4
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
            **dict.fromkeys((".zip", ".tar", ".tar.gz", ".tgz"), "hf_disk")}


def read_import(upload: BinaryIO, filename: str, fmt: str | None, mapping: FieldMapping, max_rows: int,
                *, max_bytes: int | None = None) -> ImportedRows:
    """The rows of `upload` (named `filename`) in format `fmt`, or the one its name (or, for .json,
    its first record) says; at most `max_rows` records, and an archive unpacks to at most
    UNPACKED_PER_UPLOAD_BYTE times `max_bytes` (default: the service's upload limit)."""
    fmt = guess_format(upload, filename) if fmt is None else fmt
    if fmt not in FORMATS:
        raise RequestError("format", f"must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt != "hf_disk":
        mapping.refuse(("split",), f"a {fmt} file (only to a saved DatasetDict, hf_disk)")
    if fmt in ("csv", "jsonl"):
        return delimited.read(upload, fmt, mapping, max_rows)
    if fmt == "label_studio":
        return label_studio.read(upload, mapping, max_rows)
    if fmt == "argilla":
        return argilla.read(upload, mapping, max_rows)
    if fmt == "parquet":
        return parquet.read(upload, mapping, max_rows)
    max_bytes = get_settings().max_upload_bytes if max_bytes is None else max_bytes
    return hf_disk.read(upload, mapping, max_rows, UNPACKED_PER_UPLOAD_BYTE * max_bytes)


def guess_format(upload: BinaryIO, filename: str) -> str:
    """The format a file's name says; a .json file's is its first record's (Label Studio's export)."""
    name = filename.lower()
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    named = f"give the format ({', '.join(FORMATS)}; the CLI's --format)"
    if not name.endswith(".json"):
        raise RequestError("format", f"cannot be told from the file name {filename!r}: {named}")
    with closing(json_items(upload, "record")) as items:
        first = next(items, None)
    upload.seek(0)
    if not label_studio.looks_like(first):
        raise RequestError("format", "cannot be told for a .json file that is not Label Studio's export (a "
                                     f"list of tasks with data and annotations): {named}")
    return "label_studio"
