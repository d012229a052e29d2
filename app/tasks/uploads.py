"""Reading an uploaded CSV or JSONL file into a task's texts, labels and weak labels.

Whatever the bytes, the answer is a 4xx naming the field and the row, never a 500: every problem
of the rows at once (up to MAX_PROBLEMS), so a file is fixed in one round; a row repeated exactly
is kept once and counted, a text repeated under another label is refused naming both rows. The size cap is
checked in chunks before anything is parsed; the file is then read a line at a time from the
spooled upload (never whole into memory), rows are counted while parsing, and every text must be
one the database can store.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

import numpy as np

from app.db.storable_text import unstorable_reason
from app.errors import RequestError, RequestErrors, TooLargeError

MIN_ROWS_PER_CLASS = 10
# Problems reported at once: enough to fix a file in one go, few enough to read (the rest are counted).
MAX_PROBLEMS = 50
CHUNK_BYTES = 1 << 20


def _quote(value) -> str:
    """A value quoted back in a message, kept short (a "label" can be a 100 KB string)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 40
    return short.repr(value)


def check_size(upload: BinaryIO, max_bytes: int) -> None:
    """Count the upload's bytes a chunk at a time and stop as soon as the cap is passed, so an
    oversized file is refused without ever being held in memory; then rewind it for parsing."""
    seen = 0
    while chunk := upload.read(CHUNK_BYTES):
        seen += len(chunk)
        if seen > max_bytes:
            raise TooLargeError("file", f"is over the upload limit of {max_bytes:,} bytes")
    upload.seek(0)


class RawRow(NamedTuple):
    """The fields of a row the service reads, as the file gave them; other columns are not kept, and a
    tuple is a fraction of the parser's dict (see tasks.INSERT_CHUNK_ROWS for what both saved)."""

    text: object
    label: object
    weak_prob: object
    weak_label: object

    @classmethod
    def of(cls, row: dict) -> RawRow:
        return cls(row.get("text"), row.get("label"), row.get("weak_prob"), row.get("weak_label"))


def read_rows(upload: BinaryIO, filename: str, max_rows: int) -> list[RawRow]:
    """The file's rows (CSV by its header, JSONL one object a line); at most `max_rows`."""
    if filename.lower().endswith((".jsonl", ".ndjson")):
        parse = _jsonl_rows
    elif filename.lower().endswith(".csv"):
        parse = _csv_rows
    else:
        raise RequestError("file", "must be a .csv or .jsonl file")
    rows = []
    for row in parse(_utf8_lines(upload)):
        if len(rows) == max_rows:
            # Stop here: a longer file is not parsed (or stored) to the end just to be refused.
            raise RequestError("file", f"has more than {max_rows:,} rows; at most {max_rows:,} are accepted")
        rows.append(RawRow.of(row))
    return rows


def _utf8_lines(upload: BinaryIO) -> Iterator[str]:
    """The file's lines with their endings (as csv wants them), decoded one at a time, so that an
    invalid byte is reported with its line; a leading byte-order mark is dropped."""
    for line_no, raw in enumerate(upload, start=1):
        if line_no == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            yield raw.decode("utf-8")  # strict: encoded surrogates (ED A0 80) are refused too
        except UnicodeDecodeError as exc:
            raise RequestError("file", f"line {line_no} is not UTF-8 text ({exc.reason})") from None


def _csv_rows(lines: Iterator[str]) -> Iterator[dict]:
    reader = csv.DictReader(lines)
    try:
        columns = reader.fieldnames or []
    except csv.Error as exc:
        raise RequestError("file", f"the header line is not valid CSV: {exc}") from None
    if "text" not in columns or "label" not in columns:
        raise RequestError("file", "a CSV needs a header with the columns text and label")
    row_no = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over csv's 128 KB limit, a stray quote or line break
            where = f"row {row_no + 1} (line {reader.line_num})"
            raise RequestError("file", f"{where} is not valid CSV: {exc}") from None
        row_no += 1
        yield row


def _jsonl_rows(lines: Iterator[str]) -> Iterator[dict]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except RecursionError:
            raise RequestError("file", f"line {line_no} is nested too deeply to be a row") from None
        except json.JSONDecodeError as exc:
            raise RequestError("file", f"line {line_no} is not valid JSON: {exc.msg}") from None
        except ValueError:  # an integer of thousands of digits, which Python refuses to convert
            raise RequestError("file", f"line {line_no} has a number with too many digits") from None
        if not isinstance(row, dict):
            raise RequestError("file", f"line {line_no} is not a JSON object")
        yield row


def _number(value, field: str, row: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        raise RequestError(field, f"row {row}: {_quote(value)} is not a number") from None
    if math.isnan(number):
        raise RequestError(field, f"row {row}: is not a number")
    return number


# One text's length, in either format: csv's own field limit (csv.field_size_limit(), 131,072), which
# a CSV upload met already and a JSONL one did not (a line may hold one text of the whole 50 MiB).
MAX_TEXT_CHARS = csv.field_size_limit()


def _text(row: RawRow, i: int) -> str:
    text = row.text
    if text is None or text == "":
        raise RequestError("text", f"row {i}: text is missing or empty")
    if not isinstance(text, str):
        raise RequestError("text", f"row {i}: text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RequestError("text", f"row {i}: text is missing or empty")
    if len(text) > MAX_TEXT_CHARS:
        raise RequestError("text", f"row {i}: text has {len(text):,} characters, over the limit of {MAX_TEXT_CHARS:,}")
    if reason := unstorable_reason(text):
        raise RequestError("text", f"row {i}: text {reason}")
    return text


@dataclass(frozen=True)
class ValidRows:
    texts: list[str]
    labels: np.ndarray  # 0/1
    weak: np.ndarray | None  # probabilities or hard weak labels, when the file gives them
    rows_read: int
    duplicates_dropped: int  # rows identical to an earlier one (text, label and weak label)

    @property
    def summary(self) -> dict:
        return {"rows_read": self.rows_read, "rows_kept": len(self.texts),
                "duplicates_dropped": self.duplicates_dropped}


def _row(row: RawRow, i: int, weak_field: str | None) -> tuple[str, int, float | None]:
    """One row's text, label and weak value; RequestError naming the column and the row."""
    text = _text(row, i)
    label = _number(row.label, "label", i)
    if label not in (0, 1):
        raise RequestError("label", f"row {i}: label must be 0 or 1, got {_quote(row.label)}")
    if weak_field is None:
        return text, int(label), None
    value = _number(getattr(row, weak_field), weak_field, i)
    if weak_field == "weak_prob" and not 0 <= value <= 1:
        raise RequestError("weak_prob", f"row {i}: must lie in [0, 1], got {value}")
    if weak_field == "weak_label" and value not in (0, 1):
        raise RequestError("weak_label", f"row {i}: must be 0 or 1, got {_quote(row.weak_label)}")
    return text, int(label), value


def validate_rows(rows: list[RawRow], max_problems: int = MAX_PROBLEMS) -> ValidRows:
    """The valid rows, a row repeated identically kept once; RequestErrors listing every problem
    (up to `max_problems`, each naming its column and row) otherwise, so a file is fixed in one go."""
    if not rows:
        raise RequestError("file", "has no rows")
    has_prob = any(r.weak_prob not in (None, "") for r in rows)
    has_hard = any(r.weak_label not in (None, "") for r in rows)
    if has_prob and has_hard:
        raise RequestError("weak_prob", "give weak_prob or weak_label, not both")
    weak_field = "weak_prob" if has_prob else "weak_label" if has_hard else None
    problems: list[tuple[str, str]] = []
    more = 0
    kept: dict[str, tuple[int, int, float | None]] = {}  # text -> (row, label, weak)
    dropped = 0
    for i, row in enumerate(rows, start=1):
        try:
            text, label, weak = _row(row, i, weak_field)
            if text in kept:
                first, first_label, first_weak = kept[text]
                if (label, weak) == (first_label, first_weak):
                    dropped += 1
                    continue
                # A text under two labels: which one is true is the uploader's to say; and a
                # repeated text could land in both pool and test and leak the answer.
                what = "label" if label != first_label else weak_field
                raise RequestError("text", f"row {i}: repeats the text of row {first} with another {what}")
            kept[text] = (i, label, weak)
        except RequestError as exc:
            if len(problems) < max_problems:
                problems.append((exc.field, exc.message))
            else:
                more += 1
    if problems:
        raise RequestErrors(problems, more)
    labels = np.array([label for _, label, _ in kept.values()], dtype=np.int64)
    for cls in (0, 1):
        if (labels == cls).sum() < MIN_ROWS_PER_CLASS:
            raise RequestError("label", f"needs at least {MIN_ROWS_PER_CLASS} rows with label {cls}")
    weak = np.array([w for _, _, w in kept.values()], dtype=np.float32) if weak_field else None
    return ValidRows(list(kept), labels, weak, len(rows), dropped)
