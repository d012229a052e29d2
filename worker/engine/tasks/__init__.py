"""Task registry: built-in offline tasks and loaders for the paper's Hugging Face data sets."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from . import categories, geo, glosses, lexicon
from .base import Split, Task, balance, dedupe, split_pool_test, stable_id
from .categories import word_categories_task
from .geo import capitals_task, cities_task, city_continents_task
from .glosses import word_definitions_task
from .hf import HF_LOADERS
from .lexicon import word_sentiment_task

BUILTIN_TASKS: dict[str, Callable[[], Task]] = {
    "cities": cities_task,
    "city_continents": city_continents_task,
    "capitals": capitals_task,
    "word_sentiment": word_sentiment_task,
    "word_definitions": word_definitions_task,
    "word_categories": word_categories_task,
}

# Each builder module keeps the versions of its own tasks, next to the code whose changes bump them.
TASK_VERSIONS: dict[str, int] = {
    **geo.TASK_VERSIONS, **lexicon.TASK_VERSIONS, **glosses.TASK_VERSIONS, **categories.TASK_VERSIONS,
}


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return f"unknown task {self.args[0]!r}; known: {', '.join(task_names())}"


def task_version(name: str) -> int:
    """The build version of task `name`: bumped when a built-in task's statements change; 1 otherwise."""
    return TASK_VERSIONS.get(name, 1)


def task_names() -> list[str]:
    return [*BUILTIN_TASKS, *HF_LOADERS]


@lru_cache(maxsize=8)
def get_task(name: str) -> Task:
    """Build (once per process) the task called `name`; HF tasks need the hub or its local cache."""
    if name in BUILTIN_TASKS:
        return BUILTIN_TASKS[name]()
    if name in HF_LOADERS:
        return HF_LOADERS[name]()
    raise UnknownTaskError(name)


__all__ = [
    "BUILTIN_TASKS",
    "HF_LOADERS",
    "TASK_VERSIONS",
    "Split",
    "Task",
    "UnknownTaskError",
    "balance",
    "dedupe",
    "get_task",
    "split_pool_test",
    "stable_id",
    "task_names",
    "task_version",
]
