"""Types and checks shared by the requests: bounded amounts, seeds, names, models and weak labelers.

Every number a request can set has an upper bound no real user reaches, and floats must be finite:
a budget of 1e308 over a price of 5e-324 overflowed the label-count arithmetic (a 500), and
unbounded counts let one request hold the workers for days. The bounds are in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from worker.engine.models import check_model_name
from worker.engine.spec import MAX_SEED, MethodParams
from worker.engine.weak_labels import parse_labeler

# A label costs at least MIN_PRICE and at most MAX_PRICE, a budget at most MAX_BUDGET: a budget
# then buys at most 1e15 labels of one kind, a count floats and numpy integers hold exactly.
MIN_PRICE = 1e-6
MAX_PRICE = 1e6
MAX_BUDGET = 1e9
MAX_INT32 = 2**31 - 1  # ids and label counts are 32-bit integer columns
MAX_NAME_LENGTH = 200  # the trials table's model and weak_labeler columns
# Control characters are never part of a name, and Postgres refuses NUL in text (a 500 before).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


def _at_least_min_price(price: float) -> float:
    # After gt=0, so that 0 and negatives keep pydantic's own "greater than 0" message.
    if price < MIN_PRICE:
        raise PydanticCustomError(
            "greater_than_equal", "Input should be greater than or equal to {ge}", {"ge": MIN_PRICE}
        )
    return price


Price = Annotated[
    float,
    Field(gt=0, le=MAX_PRICE, allow_inf_nan=False, json_schema_extra={"minimum": MIN_PRICE}),
    AfterValidator(_at_least_min_price),
]
Budget = Annotated[float, Field(gt=0, le=MAX_BUDGET, allow_inf_nan=False)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
LabelCount = Annotated[int, Field(ge=0, le=MAX_INT32)]
TaskName = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=NO_CONTROL_CHARACTERS, examples=["cities", "word_sentiment"]),
]
# An allocation's, sweep's or study's id (a UUID): any other string is simply not found, but one with
# a control character cannot even be looked up.
ObjectId = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_CONTROL_CHARACTERS)]
# A free-text filter (a model or recipe to select stored trials by): bounded, no control characters.
Filter = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH * 5, pattern=NO_CONTROL_CHARACTERS)]


def _params_properties() -> dict:
    """MethodParams' properties with the definitions they refer to written in place: lifted out of
    the model's own schema, a `$ref` to its `$defs` (the Precision enum) would point nowhere."""
    schema = MethodParams.model_json_schema()
    definitions = schema.get("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = definitions[node["$ref"].rsplit("/", 1)[-1]]
                return inline({**target, **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return inline(schema["properties"])


def document_params(schema: dict) -> None:
    """OpenAPI for a `params` field: each MethodParams override with its type and bounds.

    The field stays a plain object in Python (overrides on top of a recipe, validated by
    recipe_params so that an error names `params.<name>`); only its schema shows what may go in it.
    """
    schema.update(properties=_params_properties(), additionalProperties=False)


def document_stored_params(schema: dict) -> None:
    """OpenAPI for the `params` of a stored request: each MethodParams override with its type; others
    are allowed, since a request stored by an older labelmix may name an override it no longer has."""
    schema.update(properties=_params_properties())


def distinct_seeds(seeds: list[int]) -> list[int]:
    """Sorted; a repeated seed would ask for the same trial twice."""
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    return sorted(seeds)


def known_model(name: str) -> str:
    """A packaged model or one the operator allows, by name; the message never depends on the file system."""
    return check_model_name(name)  # ModelSpecError is a ValueError: a 422 on the field


def known_labeler(labeler: str) -> str:
    """A weak labeler the engine can parse (worker.engine.weak_labels), its model a known one; nothing trains."""
    spec = parse_labeler(labeler)  # WeakLabelerError is a ValueError: a 422 on the field
    if spec.model is not None:
        try:
            known_model(spec.model)
        except ValueError as exc:
            raise ValueError(f"the weak labeler's {exc}") from None
    return labeler


ModelName = Annotated[
    str,
    AfterValidator(known_model),
    Field(description="a packaged model (minilm-l6, minilm-l3, smollm2-135m, gemma3-270m) or one the "
          "server's operator allows by name (LABELMIX_ALLOWED_MODELS); never a path"),
]
WeakLabeler = Annotated[
    str,
    Field(max_length=MAX_NAME_LENGTH,
          description="default, task (the task's own weak labels), bow[:N] or sft:<model>[:N] (N >= 4)"),
    AfterValidator(known_labeler),
]
