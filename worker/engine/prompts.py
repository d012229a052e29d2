"""The paper's few-shot prompt: shots as "text\\nlabel" blocks, then the query and a newline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def few_shot_prompt(shots: Sequence[tuple[str, int | str]], query: str) -> str:
    """`"\\n\\n".join(f"{text}\\n{label}")` then `"\\n\\n{query}\\n"`; no shots gives the bare query."""
    prefix = "\n\n".join(f"{text}\n{label}" for text, label in shots)
    return f"{prefix}\n\n{query}\n" if prefix else f"{query}\n"


def shuffled_shots(
    shots: Sequence[tuple[str, int | str]], k: int, rng: np.random.Generator
) -> list[tuple[str, int | str]]:
    """k shots drawn without replacement in a fresh random order (reshuffled for every input)."""
    order = rng.permutation(len(shots))[:k]
    return [shots[i] for i in order]
