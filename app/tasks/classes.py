"""An upload's classes, read from its labels: the numbers 0 and 1 (a binary task, as ever), whole
numbers 0..K-1, or names ("positive", "sports", ...); and each row's weak label as the engine takes
it (a binary task: the probability of class 1; K > 2 classes: a probability per class).

Labels are either all numbers or all names: a "yes" among 0s and 1s is a typo more often than a
class, and so is a single "2"; every class needs MIN_ROWS_PER_CLASS rows, and the message names the
rows of a class that has fewer.
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import dataclass

import numpy as np

from app.errors import RequestError

MIN_ROWS_PER_CLASS = 10
MAX_CLASSES = 100  # a labeling project's classes, not one per row
MAX_NAME_CHARS = 100
BINARY_CLASSES = ("0", "1")
# A weak distribution's probabilities must add up to 1 within this (rounded exports: 0.33 + 0.33 + 0.33).
SUM_TOLERANCE = 0.02


def quote(value) -> str:
    """A value quoted back in a message, kept short (a "label" can be a 100 KB string)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 40
    return short.repr(value)


def label_key(value, row: int, field: str = "label") -> int | str | None:
    """A label as the file gave it: a whole number (also "1", "1.0" or 1.0) or a class name; None
    if missing; RequestError naming the row for anything that cannot be a class."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and not _looks_numeric(value):
        name = value.strip()
        if len(name) > MAX_NAME_CHARS:
            raise RequestError(field, f"row {row}: a class name has at most {MAX_NAME_CHARS} characters, "
                               f"this one {len(name):,}")
        return name
    if isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isnan(number):
            raise RequestError(field, f"row {row}: {quote(value)} is not a number, nor a class name")
        if not math.isinf(number) and number == int(number) and 0 <= number < MAX_CLASSES:
            return int(number)
        raise RequestError(field, f"row {row}: {quote(value)} is not a class number (whole numbers 0 to "
                           f"{MAX_CLASSES - 1}) nor a class name")
    raise RequestError(field, f"row {row}: must be a class name or a whole number, got {quote(value)}")


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Classes:
    names: tuple[str, ...]  # in label order
    index: dict  # label key -> class index

    @property
    def binary(self) -> bool:
        return len(self.names) == 2


def odd_kind_rows(keys: list[tuple[int, int | str]]) -> list[tuple[int, RequestError]]:
    """Rows whose label is a name where the file's others are numbers, or the other way round."""
    numbers = [(row, k) for row, k in keys if isinstance(k, int)]
    names = [(row, k) for row, k in keys if isinstance(k, str)]
    if not (numbers and names):
        return []
    odd, usual = (names, "numbers") if len(names) <= len(numbers) else (numbers, "names")
    kind = "a name" if usual == "numbers" else "a number"
    return [(row, RequestError("label", f"row {row}: {quote(k)} is {kind}, where the file's other labels are {usual}"))
            for row, k in odd]


def infer_classes(keys: list[tuple[int, int | str]]) -> Classes:
    """The classes of (row, label key) pairs, all numbers or all names (odd_kind_rows takes the
    others out first); RequestError when they do not make classes."""
    numbers = [(row, k) for row, k in keys if isinstance(k, int)]
    names = [(row, k) for row, k in keys if isinstance(k, str)]
    if numbers:  # label_key has checked they are whole numbers 0 to MAX_CLASSES - 1
        values = sorted({k for _, k in numbers})
        top = max(values[-1], 1)
        missing = sorted(set(range(top + 1)) - set(values))
        if missing:
            want = "0 and 1" if top == 1 else f"0 to {top}"
            raise RequestError("label", f"labels that are numbers must be {want}, each used: no row has label "
                               f"{', '.join(map(str, missing))}")
        return Classes(tuple(str(v) for v in values), {v: v for v in values})
    ordered = sorted({k for _, k in names})
    if len(ordered) > MAX_CLASSES:
        raise RequestError("label", f"the labels name {len(ordered):,} classes; a task has at most {MAX_CLASSES}")
    if len(ordered) < 2:
        raise RequestError("label", f"every row has the label {quote(ordered[0]) if ordered else 'missing'}: "
                           "a task needs at least two classes")
    return Classes(tuple(ordered), {name: i for i, name in enumerate(ordered)})


def class_size_problems(labels: np.ndarray, rows: list[int], classes: Classes) -> list[tuple[int, RequestError]]:
    """(rows it has, a RequestError naming them) for each class with fewer than MIN_ROWS_PER_CLASS rows."""
    problems = []
    for c, name in enumerate(classes.names):
        where = [rows[i] for i in np.flatnonzero(labels == c)]
        if len(where) < MIN_ROWS_PER_CLASS:
            # "row N" each, which an import's messages turn into its records' own names (uploads._Problems).
            shown = ", ".join(f"row {row}" for row in where[:5]) + (", ..." if len(where) > 5 else "")
            rows_shown = f" ({shown})" if where else ""
            message = f"needs at least {MIN_ROWS_PER_CLASS} rows with label {name}, has {len(where)}{rows_shown}"
            problems.append((len(where), RequestError("label", message)))
    return problems


# --- weak labels ------------------------------------------------------------------------------------

WEAK_FIELDS = ("weak_prob", "weak_label", "weak_probs")


def weak_field_of(rows) -> str | None:
    """Which weak column the file gives (one at most); weak_score goes with weak_label."""
    given = [f for f in WEAK_FIELDS if any(getattr(r, f) not in (None, "") for r in rows)]
    if len(given) > 1:
        raise RequestError(given[0], f"give {' or '.join(given)}, not both: one weak label a row")
    if not given and any(r.weak_score not in (None, "") for r in rows):
        raise RequestError("weak_score", "a weak_score needs the weak_label it scores")
    return given[0] if given else None


def weak_value(row, row_no: int, field: str, classes: Classes) -> float | tuple[float, ...]:
    """One row's weak label as the engine wants it: binary, the probability of class 1; K > 2, a tuple
    of class probabilities. RequestError naming the field and the row."""
    if field == "weak_prob":
        if not classes.binary:
            raise RequestError("weak_prob", f"row {row_no}: weak_prob is the probability of class 1 of a binary task; "
                               f"this file has {len(classes.names)} classes: give weak_probs or weak_label")
        return _probability(row.weak_prob, "weak_prob", row_no)
    if field == "weak_label":
        k = classes.index.get(label_key(row.weak_label, row_no, "weak_label"))
        if k is None:
            raise RequestError("weak_label", f"row {row_no}: {quote(row.weak_label)} is not one of the classes "
                               f"({', '.join(classes.names)})")
        score = 1.0 if row.weak_score in (None, "") else _probability(row.weak_score, "weak_score", row_no)
        rest = (1.0 - score) / (len(classes.names) - 1)
        dist = [rest] * len(classes.names)
        dist[k] = score
        return _as_engine(dist, classes)
    return _distribution(row.weak_probs, row_no, classes)


def _distribution(value, row_no: int, classes: Classes) -> float | tuple[float, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RequestError("weak_probs", f"row {row_no}: not a JSON object of class probabilities") from None
    if not isinstance(value, dict):
        raise RequestError("weak_probs", f"row {row_no}: must be an object of class -> probability, "
                           f"got {quote(value)}")
    dist = [0.0] * len(classes.names)
    for name, p in value.items():
        k = classes.index.get(label_key(name, row_no, "weak_probs"))
        if k is None:
            raise RequestError("weak_probs", f"row {row_no}: {quote(name)} is not one of the classes "
                               f"({', '.join(classes.names)})")
        dist[k] = _probability(p, "weak_probs", row_no)
    if abs(sum(dist) - 1.0) > SUM_TOLERANCE:
        raise RequestError("weak_probs", f"row {row_no}: the probabilities add up to {sum(dist):.3f}, not 1")
    total = sum(dist)
    return _as_engine([p / total for p in dist], classes)


def _as_engine(dist: list[float], classes: Classes) -> float | tuple[float, ...]:
    return dist[1] if classes.binary else tuple(dist)


def _probability(value, field: str, row_no: int) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RequestError(field, f"row {row_no}: {quote(value)} is not a number") from None
    if math.isnan(p) or not 0 <= p <= 1:
        raise RequestError(field, f"row {row_no}: must lie in [0, 1], got {quote(value)}")
    return p
