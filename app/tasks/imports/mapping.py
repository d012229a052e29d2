"""Which of an export's fields are read as what: the options an upload names, and for flat records
(CSV, JSONL, Parquet, a saved dataset) the columns they pick."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.errors import RequestError
from app.tasks.imports.records import NO_ANNOTATION, ImportedRows
from app.tasks.uploads import RawRow

# Names quoted back in a message: enough to spot the right one, few enough to read.
MAX_LISTED = 20


def listing(names: Iterable[object]) -> str:
    """`names` quoted for a message, the tail counted rather than listed."""
    names = list(names)
    if not names:
        return "none"
    more = len(names) - MAX_LISTED
    return ", ".join(repr(n) for n in names[:MAX_LISTED]) + (f" and {more:,} more" if more > 0 else "")


@dataclass(frozen=True)
class FieldMapping:
    """The fields to read, by their names in the file; None takes the format's default.

    text_field: the text (a column; Label Studio: a key of a task's `data`; Argilla: a field).
    label_field: the gold label (a column; Label Studio: a Choices control's `from_name`; Argilla:
        a question).
    weak_field: the weak label (a column, read as a class unless it is `weak_prob`; Label Studio:
        the `model_version` whose predictions are the weak labels).
    weak_score_field: the weak label's confidence in [0, 1] (a column).
    split: the split of a saved DatasetDict (hf_disk).
    """

    text_field: str | None = None
    label_field: str | None = None
    weak_field: str | None = None
    weak_score_field: str | None = None
    split: str | None = None

    def refuse(self, options: Sequence[str], where: str) -> None:
        """Refuse the options that mean nothing in `where`, rather than quietly ignore them."""
        for option in options:
            if getattr(self, option) is not None:
                raise RequestError(option, f"does not apply to {where}")

    @property
    def renames_columns(self) -> bool:
        columns = (self.text_field, self.label_field, self.weak_field, self.weak_score_field)
        return any(c is not None for c in columns)


def is_missing(value: object) -> bool:
    """A gold label that is not there: null, or NaN (how pandas writes a missing number to Parquet)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Columns:
    """The column each field of a RawRow is read from; None where the file has none."""

    text: str
    label: str
    weak_prob: str | None
    weak_label: str | None
    weak_probs: str | None
    weak_score: str | None

    @classmethod
    def pick(cls, mapping: FieldMapping, names: Sequence[str]) -> Columns:
        """The columns `mapping` names among `names`, or the defaults (text, label, weak_prob,
        weak_label, weak_probs, weak_score); RequestError naming the option when one is not there."""

        def column(option: str, default: str | None = None) -> str | None:
            chosen = getattr(mapping, option)
            if chosen is None:
                return default if default in names else None
            if chosen not in names:
                raise RequestError(option, f"the file has no column {chosen!r}; its columns are "
                                           f"{listing(names)}")
            return chosen

        text, label = column("text_field", "text"), column("label_field", "label")
        for option, found, default in (("text_field", text, "text"), ("label_field", label, "label")):
            if found is None:
                raise RequestError(option, f"the file has no column {default!r}: name the column to read "
                                           f"(its columns are {listing(names)})")
        if label == text:
            raise RequestError("label_field", f"names the text column {text!r} as the label too")
        if mapping.weak_field is None:
            weak_prob, weak_label = column("weak_field", "weak_prob"), column("weak_field", "weak_label")
        else:
            # A probability column is one named so (as in a CSV today); any other weak column holds classes.
            weak = column("weak_field")
            weak_prob, weak_label = (weak, None) if weak == "weak_prob" else (None, weak)
        return cls(text, label, weak_prob, weak_label, "weak_probs" if "weak_probs" in names else None,
                   column("weak_score_field", "weak_score"))

    @property
    def needed(self) -> list[str]:
        """The columns read, once each, in the order of a RawRow's fields."""
        chosen = (self.text, self.label, self.weak_prob, self.weak_label, self.weak_probs, self.weak_score)
        return list(dict.fromkeys(c for c in chosen if c is not None))

    def row(self, record: Mapping) -> RawRow:
        def get(column: str | None) -> object:
            return None if column is None else record.get(column)

        probs = get(self.weak_probs)
        if isinstance(probs, list) and all(isinstance(p, tuple) and len(p) == 2 for p in probs):
            probs = dict(probs)  # an Arrow map column reads as a list of (class, probability) pairs
        return RawRow(get(self.text), get(self.label), get(self.weak_prob), get(self.weak_label), probs,
                      get(self.weak_score))


def rows_of(records: Iterable[Mapping], columns: Columns) -> ImportedRows:
    """A RawRow for each record; one without a gold label is left out and counted."""
    rows, names, unlabeled = [], [], 0
    for number, record in enumerate(records, start=1):
        row = columns.row(record)
        if is_missing(row.label):
            unlabeled += 1
        else:
            rows.append(row)
            # The file's count, as a plain upload's: the seventh record is "row 7" whatever was left out.
            names.append(f"row {number}")
    return ImportedRows(rows, {NO_ANNOTATION: unlabeled} if unlabeled else {}, names)
