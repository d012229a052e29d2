"""The OpenAPI document gives a generated client types for every answer: each operation has a
description and an example, every 2xx JSON body a schema with no untyped object in it (except the
few fields below that are free-form by design), and each example is valid for its schema.

Typed bodies must still serve a recommendation exactly as an older labelmix stored it: the last
tests here feed the models stored shapes of earlier versions (from git history of
app/allocations/recommend.py) and ask for them back unchanged.
"""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from app.allocations.schemas.allocations import AllocationOut, AllocationReport, SweepOut
from app.allocations.schemas.recommendation import Recommendation
from app.main import create_app
from app.results.schemas.frontier import FrontierOut
from app.results.schemas.marginal import MarginalOut
from app.results.schemas.plan import PlanOut
from app.schemas import examples as ex
from app.studies.schemas import StudyOut
from app.tasks.schemas import TaskDeletedOut, TaskOut
from app.trials.schemas import TrialDetail

# (component, field) -> why it stays a free-form object. Keep this short: every entry is a hole in
# what a generated client knows.
FREE_FORM = {
    # The request as it was stored when asked (the API's AllocationRequest, narrowed): echoed back, and
    # an older labelmix stored other keys (no recipe, no stop_when_confident), so no one shape fits all.
    ("AllocationOut", "request"): "the stored request",
    ("StudySummary", "request"): "the stored request",
    ("StudyOut", "request"): "the stored request",
    # The engine's own records, as stored with the trial: worker/engine/spec.TrialSpec (its params differ
    # by recipe) and the result the worker wrote (its keys depend on the method and the engine's version).
    ("TrialDetail", "spec"): "the engine's stored trial spec",
    ("TrialDetail", "result"): "the engine's stored result",
}
STATE_CHANGING = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict:
    return create_app().openapi()


def _operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def _json_2xx(operation: dict):
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            yield status, response.get("content", {}).get("application/json")


def _component(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _name(component: str) -> str:
    # FastAPI names a model's output schema "X-Output" when its input schema differs.
    return component.removesuffix("-Output").removesuffix("-Input")


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][_component(schema["$ref"])]
    return schema


def _untyped(schema: dict) -> bool:
    """An object a client can learn nothing about: `{}` (anything), or an object with neither
    properties nor typed additional properties."""
    keys = set(schema) - {"title", "description", "default", "examples", "deprecated", "readOnly"}
    if not keys:
        return True
    return (schema.get("type") == "object" and not schema.get("properties")
            and not isinstance(schema.get("additionalProperties"), dict))


def untyped_fields(document: dict, schema: dict) -> set[tuple[str, str]]:
    """Every (component, field) whose schema, or the schema of some item or value inside it, is untyped.
    A bare untyped body (no component) is reported as ("", "")."""
    found: set[tuple[str, str]] = set()
    visited: set[str] = set()

    def walk(node: dict, where: tuple[str, str]) -> None:
        if "$ref" in node:
            name = _component(node["$ref"])
            if name not in visited:
                visited.add(name)
                walk(document["components"]["schemas"][name], (_name(name), ""))
            return
        if _untyped(node):
            found.add(where)
        for field, sub in (node.get("properties") or {}).items():
            walk(sub, (where[0], field) if where[1] == "" else where)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], where)
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, where)

    walk(schema, ("", ""))
    return found


def _has_example(document: dict, media: dict) -> bool:
    if "example" in media or "examples" in media:
        return True
    schema = _resolve(document, media["schema"])
    if "examples" in schema:
        return True
    if "items" in schema:  # a list of a model: the model's examples show an item
        return "examples" in _resolve(document, schema["items"])
    branches = schema.get("anyOf") or schema.get("oneOf")
    return bool(branches) and all("examples" in _resolve(document, b) for b in branches)


def test_every_operation_has_a_description_and_an_example(document):
    for method, path, operation in _operations(document):
        assert operation.get("description"), (method, path)
        bodies = [media for _, media in _json_2xx(operation) if media]
        assert bodies, (method, path)
        assert any(_has_example(document, media) for media in bodies), (method, path)


def test_every_2xx_json_body_is_typed_except_the_free_form_fields(document):
    seen = set()
    for method, path, operation in _operations(document):
        for status, media in _json_2xx(operation):
            assert media and media.get("schema"), (method, path, status)
            untyped = untyped_fields(document, media["schema"])
            assert untyped <= set(FREE_FORM), (method, path, status, sorted(untyped - set(FREE_FORM)))
            seen |= untyped
    assert seen == set(FREE_FORM)  # an entry no longer needed comes off the list


def test_the_walk_finds_an_untyped_field():
    """The check above can fail: a bare dict, a dict of anything and `Any` are all caught."""
    document = {"components": {"schemas": {
        "Body": {"type": "object", "properties": {
            "bare": {"type": "object", "title": "Bare"},
            "values": {"type": "object", "additionalProperties": True},
            "anything": {"title": "Anything"},
            "fine": {"type": "object", "additionalProperties": {"type": "number"}},
            "listed": {"type": "array", "items": {"type": "object"}},
        }},
    }}}
    found = untyped_fields(document, {"$ref": "#/components/schemas/Body"})
    assert found == {("Body", "bare"), ("Body", "values"), ("Body", "anything"), ("Body", "listed")}


def _examples_of(component: str) -> list[dict]:
    """A model's examples as written (FastAPI's own document would have lost their nulls)."""
    from app.allocations.routes.webhook_secret import WebhookSecretOut
    from app.allocations.schemas.allocations import AllocationPage
    from app.api.health import Liveness, Readiness
    from app.studies.schemas import StudySummary
    from app.trials.schemas import TrialOut

    models = [AllocationOut, AllocationPage, SweepOut, AllocationReport, FrontierOut, MarginalOut, PlanOut, StudyOut,
              StudySummary, TaskDeletedOut, TaskOut, TrialOut, TrialDetail, Liveness, Readiness, WebhookSecretOut]
    by_name = {model.__name__: model for model in models}
    assert _name(component) in by_name, f"{component} has examples: add its model to this test's list"
    return by_name[_name(component)].model_json_schema(mode="serialization")["examples"]


def test_every_example_is_valid_for_its_schema(document):
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        if "examples" not in schema:
            continue
        # Served as written, nulls included (app/api/openapi_examples.py).
        assert schema["examples"] == _examples_of(name), name
        validator = Draft202012Validator({**schema, "components": document["components"]})
        for example in schema["examples"]:
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(example)]
            assert not errors, (name, errors[:5])
            checked += 1
    assert checked >= 15


def test_every_operation_declares_its_errors(document):
    """An id or name in the path may name nothing (404); a browser's cross-site POST is refused (403)
    and any body may be over the limit (413)."""
    for method, path, operation in _operations(document):
        declared = {int(s) for s in operation["responses"]}
        assert 422 in declared, (method, path)
        if "{" in path:
            assert 404 in declared, (method, path)
        if method in STATE_CHANGING:
            assert {403, 413} <= declared, (method, path)


@pytest.mark.parametrize(("model", "example"), [
    (AllocationOut, ex.ALLOCATION), (AllocationOut, ex.RUNNING_ALLOCATION), (SweepOut, ex.SWEEP),
    (AllocationReport, ex.REPORT), (FrontierOut, ex.FRONTIER), (MarginalOut, ex.MARGINAL), (PlanOut, ex.PLAN),
    (StudyOut, ex.STUDY), (TaskOut, ex.TASK), (TaskDeletedOut, ex.TASK_DELETED), (TrialDetail, ex.TRIAL_DETAIL),
])
def test_a_body_goes_through_its_model_unchanged(model, example):
    """What the typed models serve is what the dicts they are built from say: same keys, same values."""
    assert model.model_validate(example).model_dump(mode="json") == example


# What app/allocations/recommend.py stored in its first version (133a3bb): the point's summary without
# recipe, interval or n_test, and no interval, ties, warnings or search.
FIRST_STORED = {
    "method": "seq_sft", "model": "minilm-l6", "n_weak": 640, "n_gold": 64, "spend_weak": 64.0, "spend_gold": 64.0,
    "cost": 128.0, "weak_share_of_labels": 0.9091, "weak_share_of_spend": 0.5, "accuracy": 0.85,
    "accuracy_spread": 0.01, "selection_accuracy": 0.86, "holdout_accuracy": 0.84, "holdout_spread": 0.02,
    "regime": "mixed", "seeds": [0, 1], "trial_ids": [1, 2], "expected_accuracy": 0.84,
    "expected_accuracy_spread": 0.02,
    "accuracy_note": "chosen on selection_accuracy (first half of the test set); expected_accuracy is the mean over "
                     "seeds on the second half, which played no part in the choice",
}
# Its intervals version (2309f12): `best_on_selection`, no longer written, and references by selection accuracy.
INTERVALS_STORED = {
    **FIRST_STORED, "recipe": "paper", "weak_labeler": "default", "n_test": 1000, "interval": ex.INTERVAL,
    "expected_accuracy_interval": ex.INTERVAL, "level": 0.9, "majority_rate": 0.5, "unspent": None,
    "best_on_selection": {"method": "seq_sft", "n_weak": 640, "n_gold": 64, "cost": 128.0, "selection_accuracy": 0.86},
    "runner_up": {"method": "seq_sft", "n_weak": 0, "n_gold": 128, "cost": 128.0, "selection_accuracy": 0.83,
                  "best_minus_it": ex.COMPARISON},
    "ties": [], "tie": False, "warnings": [],
    # Before stop_rule had chance_any_beats, and before stopped_early (1905c6d).
    "search": {"points_asked": 8, "points_cap": 8, "trials_used": 16, "stop_rule": {
        "confident": False, "margin": 0.01, "stop_probability": 0.05,
        "likeliest_better": {"method": "seq_sft", "n_weak": 1280, "n_gold": 0, "weak_share": 1.0, "probability": 0.2},
        "says": "more points could change the answer"}},
}


@pytest.mark.parametrize(
    "stored", [FIRST_STORED, INTERVALS_STORED, ex.RECOMMENDATION], ids=["first", "intervals", "now"]
)
def test_a_stored_recommendation_is_served_as_stored(stored):
    """A key an older version did not write stays absent (not null), one it wrote that is gone stays."""
    assert Recommendation.model_validate(stored).model_dump(mode="json") == stored
    served = AllocationOut.model_validate({**ex.ALLOCATION, "recommendation": stored}).model_dump_json()
    assert json.loads(served)["recommendation"] == stored
