"""Parsing the CLI's list and name=value options, with errors that name the option."""

from __future__ import annotations

import json

import typer


def numbers(text: str, kind: type, option: str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"takes comma-separated {kind.__name__}s, got {text!r}", param_hint=option) from None


def _param_value(text: str):
    # "2" -> 2, "true" -> True, "null" -> None; anything else stays a string for the service to judge.
    try:
        return json.loads(text)
    except ValueError:
        return text


def params(pairs: list[str] | None, option: str = "--param") -> dict:
    """`name=value` options as a dict of overrides."""
    try:
        return {name: _param_value(value) for name, value in (p.split("=", 1) for p in pairs or [])}
    except ValueError:
        raise typer.BadParameter("takes name=value", param_hint=option) from None
