"""Label Studio's JSON export (Export > JSON): a list of tasks, each with its `data`, its annotators'
`annotations` and its models' `predictions`, read for one Choices control (a classification).

Gold is the choice most of a task's completed annotations (not `was_cancelled`) picked; the weak
label is one model version's predicted choice on the same control, with the result's or the
prediction's `score`. The export is read twice, a task at a time: once to learn its keys, controls
and model versions (and check its shape and the row cap), once for the rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from app.errors import RequestError
from app.tasks.imports.json_records import json_items
from app.tasks.imports.mapping import FieldMapping, listing
from app.tasks.imports.records import (
    ANNOTATORS_TIED,
    CANCELLED,
    NO_ANNOTATION,
    ImportedRows,
    capped,
    majority,
)
from app.tasks.uploads import RawRow

# Keys of a JSON_MIN record (label_studio_sdk/converter/converter.py, convert_to_json_min) that no task has.
JSON_MIN_KEYS = frozenset({"annotation_id", "annotator", "lead_time"})
JSON_MIN_REFUSED = (
    "is Label Studio's JSON_MIN export, which cannot be read: it gives a choice as a bare string just "
    "like a text, and leaves out cancelled annotations and model predictions. Export the project as "
    "JSON (the full export) instead")
SHAPE = "a Label Studio JSON export is a list of tasks, each with a data object and a list of annotations"


@dataclass
class _Survey:
    tasks: int = 0
    data_keys: dict[str, bool] = field(default_factory=dict)  # key -> holds a string in some task
    controls: dict[str, None] = field(default_factory=dict)  # from_name of each Choices control answered
    # control -> the model versions whose predictions pick a choice on it
    versions: dict[str, dict[str | None, None]] = field(default_factory=dict)


def read(upload: BinaryIO, mapping: FieldMapping, max_rows: int) -> ImportedRows:
    mapping.refuse(("weak_score_field",), "a Label Studio export (a prediction's score is read)")
    survey = _survey(upload, max_rows)
    if not survey.tasks:
        raise RequestError("file", "has no tasks")
    text_key = _text_key(survey, mapping.text_field)
    control = _control(survey, mapping.label_field)
    versions = survey.versions.get(control, {})
    if mapping.weak_field is not None and not versions:
        raise RequestError("weak_field", f"no prediction picks a choice on {control!r}")
    version = _version(versions, control, mapping.weak_field) if versions else None
    upload.seek(0)
    rows, names, dropped = [], [], Counter()
    for number, task in enumerate(json_items(upload, "task"), start=1):
        name = _name(number, task)
        label, why_not = _gold(task, control, name)
        if why_not:
            dropped[why_not] += 1
            continue
        weak, score = _prediction(task, control, version, name) if versions else (None, None)
        rows.append(RawRow(task["data"].get(text_key), label, None, weak, None, score))
        names.append(name)
    return ImportedRows(rows, dict(dropped), names)


def looks_like(item: object) -> bool:
    """Whether the first record of a .json file is a Label Studio task, or a JSON_MIN record."""
    if not isinstance(item, dict):
        return False
    return {"data", "annotations"} <= item.keys() or bool(JSON_MIN_KEYS & item.keys())


def _name(number: int, task: object) -> str:
    return f"task {number} (id {task['id']})" if isinstance(task, dict) and "id" in task else f"task {number}"


def _survey(upload: BinaryIO, max_rows: int) -> _Survey:
    survey = _Survey()
    for number, task in enumerate(capped(json_items(upload, "task"), max_rows), start=1):
        name = _name(number, task)
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            if number == 1 and isinstance(task, dict) and JSON_MIN_KEYS & task.keys():
                raise RequestError("format", JSON_MIN_REFUSED)
            raise RequestError("file", f"{name} has no data object: {SHAPE}")
        if not isinstance(task.get("annotations"), list):
            raise RequestError("file", f"{name} has no list of annotations: {SHAPE}")
        survey.tasks += 1
        for key, value in task["data"].items():
            survey.data_keys[key] = survey.data_keys.get(key, False) or isinstance(value, str)
        for annotation in task["annotations"]:
            if not isinstance(annotation, dict):
                raise RequestError("file", f"{name} has an annotation that is not an object: {SHAPE}")
            for result in _choices_results(annotation, name):
                survey.controls.setdefault(result["from_name"])
        for prediction in _predictions(task, name):
            for result in _choices_results(prediction, name):
                survey.controls.setdefault(result["from_name"])
                survey.versions.setdefault(result["from_name"], {}).setdefault(_version_of(prediction))
    return survey


def _predictions(task: dict, name: str) -> list[dict]:
    predictions = task.get("predictions") or []
    if not isinstance(predictions, list):
        raise RequestError("file", f"{name} has predictions that are not a list")
    # An Enterprise snapshot asked for "only IDs" lists each prediction's id: no choice to read.
    return [p for p in predictions if isinstance(p, dict)]


def _version_of(prediction: dict) -> str | None:
    version = prediction.get("model_version")
    return None if version is None else str(version)


def _choices_results(entry: dict, name: str) -> list[dict]:
    """The Choices results of an annotation or a prediction, checked to hold a list of choices."""
    results = entry.get("result") or []
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise RequestError("file", f"{name} has a result that is not a list of objects")
    found = [r for r in results if str(r.get("type", "")).lower() == "choices"]
    for result in found:
        value = result.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(result.get("from_name"), str) or not isinstance(choices, list):
            raise RequestError("file", f"{name} has a choices result without a from_name and a list of "
                                       "choices")
        if not all(isinstance(c, (str, int, float)) for c in choices):
            raise RequestError("file", f"{name} has a choice that is not a string or a number")
    return found


def _picked(entry: dict, control: str, name: str) -> list[tuple[dict, object]]:
    """Each choice an annotation or a prediction picks on `control`, with the result holding it."""
    results = [r for r in _choices_results(entry, name) if r["from_name"] == control]
    return [(r, choice) for r in results for choice in r["value"]["choices"]]


def _gold(task: dict, control: str, name: str) -> tuple[object, str | None]:
    """The task's gold choice, or why it has none."""
    votes, cancelled = [], 0
    for annotation in task["annotations"]:
        if annotation.get("was_cancelled"):
            cancelled += 1
            continue
        picked = [choice for _, choice in _picked(annotation, control, name)]
        if len(picked) > 1:
            raise RequestError("label_field", f"{name}: annotation {annotation.get('id')} picks "
                                              f"{len(picked)} choices on {control!r} ({listing(picked)}); "
                                              "a label is one choice")
        votes += picked
    if not votes:
        return None, CANCELLED if cancelled and cancelled == len(task["annotations"]) else NO_ANNOTATION
    label, tied = majority(votes)
    return (None, ANNOTATORS_TIED) if tied else (label, None)


def _prediction(task: dict, control: str, version: str | None, name: str) -> tuple[object, object]:
    """The choice `version`'s prediction picks on `control` and its score; (None, None) without one."""
    picked = [(p, r, c) for p in _predictions(task, name) if _version_of(p) == version
              for r, c in _picked(p, control, name)]
    if not picked:
        return None, None
    if len(picked) > 1:
        choices = listing(choice for *_, choice in picked)
        raise RequestError("weak_field", f"{name}: the predictions of model version {version!r} pick "
                                         f"{len(picked)} choices on {control!r} ({choices}); a weak label is "
                                         "one choice")
    prediction, result, choice = picked[0]
    score = result.get("score")  # a result's own score, else its prediction's
    return choice, prediction.get("score") if score is None else score


def _text_key(survey: _Survey, chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in survey.data_keys:
            raise RequestError("text_field", f"no task's data has the key {chosen!r}; its keys are "
                                             f"{listing(survey.data_keys)}")
        return chosen
    texts = [key for key, holds_text in survey.data_keys.items() if holds_text]
    if len(texts) != 1:
        which = f"several keys hold text ({listing(texts)})" if texts else "no key holds text"
        raise RequestError("text_field", f"the tasks' data has {len(survey.data_keys)} keys and {which}: "
                                         "name the key of the text to read")
    return texts[0]


def _control(survey: _Survey, chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in survey.controls:
            raise RequestError("label_field", f"no annotation or prediction answers a Choices control named "
                                              f"{chosen!r}; the export's are {listing(survey.controls)}")
        return chosen
    if not survey.controls:
        raise RequestError("label_field", "no annotation or prediction answers a Choices control: only a "
                                          "classification (Choices) project can be imported")
    if len(survey.controls) > 1:
        raise RequestError("label_field", f"the export answers several Choices controls "
                                          f"({listing(survey.controls)}): name the one that holds the label")
    return next(iter(survey.controls))


def _version(versions: dict[str | None, None], control: str, chosen: str | None) -> str | None:
    if chosen is not None:
        if chosen not in versions:
            raise RequestError("weak_field", f"no prediction of model version {chosen!r} picks a choice on "
                                             f"{control!r}; the versions that do are {listing(versions)}")
        return chosen
    if len(versions) > 1:
        raise RequestError("weak_field", f"predictions of several model versions pick choices on "
                                         f"{control!r} ({listing(versions)}): name the one whose "
                                         "predictions are the weak labels")
    return next(iter(versions))
