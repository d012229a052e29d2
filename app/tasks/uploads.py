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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

import numpy as np

from app.db.storable_text import unstorable_reason
from app.errors import RequestError, RequestErrors, TooLargeError
from app.tasks.classes import (
    BINARY_CLASSES,
    class_size_problems,
    infer_classes,
    label_key,
    odd_kind_rows,
    weak_field_of,
    weak_value,
)
# Problems reported at once: enough to fix a file in one go, few enough to read (the rest are counted).
MAX_PROBLEMS = 50
CHUNK_BYTES = 1 << 20


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
    label: object  # 0/1, or a class name (or integer) of a task of K classes
    weak_prob: object  # a binary task's probability of label 1
    weak_label: object  # a weak class, by name or integer
    # A weak labeler's distribution over the classes ({class: probability}), or its confidence in
    # weak_label (imports whose model predictions carry a score: Label Studio, Argilla).
    weak_probs: object = None
    weak_score: object = None

    @classmethod
    def of(cls, row: dict) -> RawRow:
        return cls(row.get("text"), row.get("label"), row.get("weak_prob"), row.get("weak_label"),
                   row.get("weak_probs"), row.get("weak_score"))


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
    yield from csv_records(reader)


def csv_records(reader: csv.DictReader) -> Iterator[dict]:
    """The reader's rows, a row that is not valid CSV refused naming its row and line."""
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
    labels: np.ndarray  # class indices
    weak: np.ndarray | None  # binary: probability of class 1; K > 2 classes: rows of probabilities
    rows_read: int
    duplicates_dropped: int  # rows identical to an earlier one (text, label and weak label)
    classes: tuple[str, ...] = BINARY_CLASSES  # in label order

    @property
    def summary(self) -> dict:
        return {"rows_read": self.rows_read, "rows_kept": len(self.texts),
                "duplicates_dropped": self.duplicates_dropped}


ROW_NUMBER = re.compile(r"\brow (\d+)\b")


class _Problems:
    """Problems of a file in row order (those of the whole file last), up to a limit, the rest counted;
    each "row N" in a message said as the file names that record (`names`), where it does."""

    def __init__(self, names: list[str | None], limit: int):
        self.names, self.limit, self.found = names, limit, []

    def add(self, exc: RequestError, row: int | None = None) -> None:
        message = ROW_NUMBER.sub(self._name, exc.message)
        self.found.append((math.inf if row is None else row, len(self.found), exc.field, message))

    def _name(self, match: re.Match) -> str:
        n = int(match.group(1))
        return (self.names[n - 1] if 0 < n <= len(self.names) else None) or match.group(0)

    def raise_any(self) -> None:
        if self.found:
            ordered = [(field, message) for _, _, field, message in sorted(self.found)]
            raise RequestErrors(ordered[: self.limit], max(len(ordered) - self.limit, 0))


def validate_rows(rows: list[RawRow], max_problems: int = MAX_PROBLEMS,
                  names: list[str | None] | None = None) -> ValidRows:
    """The valid rows, a row repeated identically kept once; RequestErrors listing every problem
    (up to `max_problems`, each naming its column and row) otherwise, so a file is fixed in one go.

    The classes come from the labels (app/tasks/classes.py): 0 and 1 make a binary task as ever,
    whole numbers 0..K-1 or names a task of K classes."""
    if not rows:
        raise RequestError("file", "has no rows")
    # An export's records are tasks or records with ids, some left out: its names say which one.
    problems = _Problems(names or [], max_problems)
    keys: list[tuple[int, int | str]] = []
    texts: dict[int, str] = {}
    for i, row in enumerate(rows, start=1):
        try:
            texts[i] = _text(row, i)
        except RequestError as exc:
            problems.add(exc, i)
        try:
            key = label_key(row.label, i)
        except RequestError as exc:
            problems.add(exc, i)
            continue
        if key is None:
            problems.add(RequestError("label", f"row {i}: label is missing"), i)
        else:
            keys.append((i, key))
    odd = odd_kind_rows(keys)
    for i, exc in odd:
        problems.add(exc, i)
    odd_rows = {row for row, _ in odd}
    keys = [(i, key) for i, key in keys if i not in odd_rows]
    try:
        weak_field = weak_field_of(rows)
        classes = infer_classes(keys)
    except RequestError as exc:  # nothing more to check row by row without the classes
        problems.add(exc)
        problems.raise_any()
    kept: dict[str, tuple[int, int, object]] = {}  # text -> (row, class, weak)
    dropped = 0
    for i, key in keys:
        if i not in texts:
            continue
        text, label = texts[i], classes.index[key]
        try:
            weak = None if weak_field is None else weak_value(rows[i - 1], i, weak_field, classes)
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
            problems.add(exc, i)
    labels = np.array([label for _, label, _ in kept.values()], dtype=np.int64)
    # Counted on the rows kept: a class left with no rows only because its rows have problems is not
    # one more problem; a class with too few (a lone 2 among 0s and 1s) is, whatever else is wrong.
    for n, exc in class_size_problems(labels, [row for row, _, _ in kept.values()], classes):
        if n or not problems.found:
            problems.add(exc)
    problems.raise_any()
    weak = np.array([w for _, _, w in kept.values()], dtype=np.float32) if weak_field else None
    return ValidRows(list(kept), labels, weak, len(rows), dropped, classes.names)
