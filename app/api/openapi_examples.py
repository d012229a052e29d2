"""The OpenAPI document with each model's examples as written.

FastAPI serialises the whole document with exclude_none, which reaches into examples too: an
example's `"error": null` or `"next_cursor": null` vanished, and a reader (or a generated client's
tests) saw a body the service never sends. The examples are put back from the models themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import FastAPI
from pydantic import BaseModel


def _models() -> Iterator[type[BaseModel]]:
    stack = list(BaseModel.__subclasses__())
    while stack:
        model = stack.pop()
        stack += model.__subclasses__()
        if model.__module__.startswith("app."):
            yield model


def _examples_by_component() -> dict[str, list]:
    found: dict[str, list] = {}
    seen: set[str] = set()
    for model in _models():
        name = model.__name__
        if name in seen:  # two models of one name: FastAPI names their components otherwise; leave both
            found.pop(name, None)
            continue
        seen.add(name)
        examples = (model.model_config.get("json_schema_extra") or {})
        if isinstance(examples, dict) and "examples" in examples:
            found[name] = examples["examples"]
    return found


def keep_example_nulls(app: FastAPI) -> None:
    generate: Callable[[], dict] = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        examples = _examples_by_component()
        for component, schema in document.get("components", {}).get("schemas", {}).items():
            name = component.removesuffix("-Output").removesuffix("-Input")
            if "examples" in schema and name in examples:
                schema["examples"] = examples[name]
        return document

    app.openapi = openapi
