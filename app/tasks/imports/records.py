"""What every reader of an export shares: its answer, the records it reads (with the row cap), and
one gold label out of several annotators' answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from app.errors import RequestError
from app.tasks.uploads import RawRow

# Why a record was left out (ImportedRows.dropped's keys).
NO_ANNOTATION = "no_annotation"  # no gold label: nobody answered, or the label is null
ANNOTATORS_TIED = "annotators_tied"  # the annotators' answers split evenly at the top
CANCELLED = "cancelled_annotations"  # Label Studio: every annotation was cancelled (skipped)
DISCARDED = "discarded_responses"  # Argilla: answered only by discarded responses
DRAFTS = "draft_responses"  # Argilla: answered only in drafts, never submitted

T = TypeVar("T")


@dataclass(frozen=True)
class ImportedRows:
    rows: list[RawRow]
    dropped: dict[str, int]  # why -> how many records were left out on purpose
    # How the file names each row's record, for messages ("task 3 (id 4003)"); None: "row N" as counted.
    names: list[str | None] | None = None


@dataclass(frozen=True)
class Table:
    """Flat records and what is known of their columns before they are read."""

    columns: list[str]  # every column (key), in the file's order
    text_columns: list[str]  # those holding strings
    records: Callable[[Sequence[str]], Iterator[dict]]  # a fresh pass, reading at least these columns


def reason(exc: BaseException) -> str:
    """A library's complaint about a file, short enough to quote back (never its traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def too_many_rows(max_rows: int) -> RequestError:
    return RequestError("file", f"has more than {max_rows:,} rows; at most {max_rows:,} are accepted")


def capped(records: Iterable[T], max_rows: int) -> Iterator[T]:
    """`records`, refused as soon as there is one more than `max_rows`: the rest is never read."""
    for count, record in enumerate(records, start=1):
        if count > max_rows:
            raise too_many_rows(max_rows)
        yield record


def majority(votes: Sequence[object]) -> tuple[object, bool]:
    """The answer most of (at least one) annotators gave, and whether another was given as often."""
    top = Counter(votes).most_common(2)
    return top[0][0], len(top) == 2 and top[0][1] == top[1][1]
