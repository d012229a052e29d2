"""An Argilla export, read for one single-label question: gold is the answer most submitted responses
gave (drafts and discarded responses do not count), the weak label is the question's suggestion,
with its score. It is read from JSON, JSON Lines or Parquet, in either of Argilla's flat layouts:

- Argilla 2 (`dataset.records.to_datasets()`, `Dataset.to_hub`, the server's export to the Hub): a
  column a field, and for each question `<q>.responses` (the values), `<q>.responses.users`,
  `<q>.responses.status`, `<q>.suggestion`, `<q>.suggestion.score`, `<q>.suggestion.agent`.
- Argilla 1's FeedbackDataset (`format_as("datasets")`, `push_to_huggingface`): for each question a
  `<q>` column of {user_id, value, status} responses, `<q>-suggestion` and `<q>-suggestion-metadata`
  ({type, score, agent}).
"""

from __future__ import annotations

from collections import Counter
from typing import BinaryIO

from app.errors import RequestError
from app.tasks.imports.json_records import json_table
from app.tasks.imports.mapping import FieldMapping, listing
from app.tasks.imports.parquet import is_parquet, parquet_table
from app.tasks.imports.records import (
    ANNOTATORS_TIED,
    DISCARDED,
    DRAFTS,
    NO_ANNOTATION,
    ImportedRows,
    majority,
)
from app.tasks.uploads import RawRow

NESTED_REFUSED = (
    "is Argilla's records.json (Dataset.to_disk), which does not keep whether a response was submitted, "
    "a draft or discarded: export the records for Hugging Face instead (Dataset.to_hub, or "
    "dataset.records.to_datasets().to_parquet(...)) and upload that")
SCALARS = (str, int, float)


class _Argilla2:
    id_column = "id"
    record_columns = frozenset({"id", "status", "_server_id"})
    suffixes = (".responses", ".responses.users", ".responses.status", ".suggestion", ".suggestion.score",
                ".suggestion.agent")

    def questions(self, columns: list[str]) -> list[str]:
        ends = (".responses", ".suggestion")
        return list(dict.fromkeys(c.rpartition(".")[0] for c in columns if c.endswith(ends)))

    def is_field(self, column: str, questions: list[str]) -> bool:
        # The server's export prefixes metadata and vectors; the SDK's sets them beside the fields.
        return not (column in self.record_columns or column.startswith(("metadata.", "vector."))
                    or any(column == q + s for q in questions for s in self.suffixes))

    def columns_of(self, question: str, columns: list[str]) -> list[str]:
        if f"{question}.responses" in columns and f"{question}.responses.status" not in columns:
            raise RequestError("file", f"has {question}.responses but no {question}.responses.status column: "
                                       "submitted responses cannot be told from drafts")
        return [question + s for s in self.suffixes if question + s in columns]

    def answers(self, record: dict, question: str, name: str) -> list[tuple[object, object]]:
        values = record.get(f"{question}.responses") or []
        statuses = record.get(f"{question}.responses.status") or []
        if not isinstance(values, list) or not isinstance(statuses, list) or len(values) != len(statuses):
            raise RequestError("file", f"{name}: {question}.responses and {question}.responses.status are "
                                       "not lists of one entry a response")
        return list(zip(values, statuses))

    def suggestion(self, record: dict, question: str) -> tuple[object, object]:
        return record.get(f"{question}.suggestion"), record.get(f"{question}.suggestion.score")


class _Argilla1:
    id_column = "external_id"
    record_columns = frozenset({"external_id", "metadata"})  # metadata: the record's, as a JSON string

    def questions(self, columns: list[str]) -> list[str]:
        return [c.removesuffix("-suggestion") for c in columns if c.endswith("-suggestion")]

    def is_field(self, column: str, questions: list[str]) -> bool:
        return not (column in self.record_columns
                    or any(column in (q, f"{q}-suggestion", f"{q}-suggestion-metadata") for q in questions))

    def columns_of(self, question: str, columns: list[str]) -> list[str]:
        own = (question, f"{question}-suggestion", f"{question}-suggestion-metadata")
        return [c for c in own if c in columns]

    def answers(self, record: dict, question: str, name: str) -> list[tuple[object, object]]:
        responses = record.get(question) or []
        if isinstance(responses, dict):  # a struct of lists, as older exports have it (a Sequence feature)
            responses = [dict(zip(responses, values)) for values in zip(*responses.values())]
        if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
            raise RequestError("file", f"{name}: {question} is not a list of responses")
        return [(r.get("value"), r.get("status")) for r in responses]

    def suggestion(self, record: dict, question: str) -> tuple[object, object]:
        metadata = record.get(f"{question}-suggestion-metadata")
        score = metadata.get("score") if isinstance(metadata, dict) else None
        return record.get(f"{question}-suggestion"), score


def read(upload: BinaryIO, mapping: FieldMapping, max_rows: int) -> ImportedRows:
    mapping.refuse(("weak_field", "weak_score_field"), "an Argilla export (its suggestion is the weak label)")
    table = parquet_table(upload, max_rows) if is_parquet(upload) else json_table(upload, "record", max_rows)
    layout = _layout(table.columns)
    questions = layout.questions(table.columns)
    question = _question(questions, mapping.label_field)
    text = _text_field([c for c in table.text_columns if layout.is_field(c, questions)], table.columns,
                       mapping.text_field)
    wanted = [text, *layout.columns_of(question, table.columns)]
    if layout.id_column in table.columns:
        wanted.append(layout.id_column)
    rows, names, dropped = [], [], Counter()
    for number, record in enumerate(table.records(wanted), start=1):
        identity = record.get(layout.id_column)
        name = f"record {number}" if identity is None else f"record {number} (id {identity})"
        label, why_not = _gold(layout.answers(record, question, name), question, name)
        if why_not:
            dropped[why_not] += 1
            continue
        weak, score = layout.suggestion(record, question)
        if weak is not None and not isinstance(weak, SCALARS):
            raise RequestError("label_field", f"{name}: the suggestion for {question!r} is not one answer; "
                                              "only a single-label question can be the label")
        rows.append(RawRow(record.get(text), label, None, weak, None, score))
        names.append(name)
    return ImportedRows(rows, dict(dropped), names)


def _layout(columns: list[str]) -> _Argilla1 | _Argilla2:
    if "fields" in columns and ("responses" in columns or "suggestions" in columns):
        raise RequestError("format", NESTED_REFUSED)
    if any(c.endswith((".responses", ".suggestion")) for c in columns):
        return _Argilla2()
    if any(c.endswith("-suggestion") for c in columns):
        return _Argilla1()
    raise RequestError("file", "is not an Argilla export: it has no <question>.responses or "
                               "<question>.suggestion columns (Argilla 2), nor <question>-suggestion columns "
                               "(Argilla 1)")


def _gold(answers: list[tuple[object, object]], question: str, name: str) -> tuple[object, str | None]:
    """The answer most submitted responses gave, or why there is none."""
    # A response to the record's other questions holds no value for this one.
    votes = [value for value, status in answers if status == "submitted" and value is not None]
    if not all(isinstance(v, SCALARS) for v in votes):
        raise RequestError("label_field", f"{name}: a response to {question!r} is not one answer; only a "
                                          "single-label question (label_selection, rating) can be the label")
    if not votes:
        statuses = {status for _, status in answers}
        return None, (DISCARDED if "discarded" in statuses else DRAFTS if "draft" in statuses
                      else NO_ANNOTATION)
    label, tied = majority(votes)
    return (None, ANNOTATORS_TIED) if tied else (label, None)


def _question(questions: list[str], chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in questions:
            raise RequestError("label_field", f"the export has no question {chosen!r}; its questions are "
                                              f"{listing(questions)}")
        return chosen
    if len(questions) != 1:
        raise RequestError("label_field", f"the export has several questions ({listing(questions)}): name "
                                          "the one that holds the label")
    return questions[0]


def _text_field(candidates: list[str], columns: list[str], chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in columns:
            raise RequestError("text_field", f"the export has no field {chosen!r}; its columns are "
                                             f"{listing(columns)}")
        return chosen
    if len(candidates) != 1:
        which = f"several columns hold text ({listing(candidates)})" if candidates else "no field holds text"
        raise RequestError("text_field", f"{which}: name the field to read")
    return candidates[0]
