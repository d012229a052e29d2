"""Loaders for the data sets of Mallen & Belrose (2024), "Balancing Label Quantity and Quality for
Scalable Elicitation", fetched from the Hugging Face hub (or its local cache).

This module only says where each data set lives and fetches its rows; turning rows into a
balanced binary Task is pure and lives in `binarize.py`. Every loader takes an injectable
`load_split`, so tests can hand it rows written in the real schema without the hub.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .base import Task
from .binarize import (
    Record,
    Row,
    RowFormatter,
    amazon_polarity_record,
    boolq_record,
    cola_record,
    cosmos_qa_record,
    hellaswag_record,
    mmlu_record,
    quail_record,
    sample_rows,
    sciq_record,
    social_i_qa_record,
    task_from_records,
)

# Fixed so that every install shows the same answers and builds the same pool and test set.
_SEED = 20241016

DEFAULT_N_TEST = 1000
# Bounds memory and embedding time; the paper's budgets stay well below it.
DEFAULT_MAX_POOL = 50_000
# Rows read per wanted example. Binarized and natural splits are near 50/50, so twice the target
# survives deduplication and balancing; it only binds on huge splits (amazon_polarity).
_ROWS_PER_EXAMPLE = 2

LoadSplit = Callable[[str, str | None, str], Sequence[Row]]


class HFDatasetUnavailableError(ConnectionError):
    """The hub could not be reached and the split is not in the local cache."""


def load_hf_split(path: str, config: str | None, split: str) -> Sequence[Row]:
    """One split from the hub or the local cache. No `trust_remote_code`: a data set's own code
    never runs here."""
    import datasets  # slow to import, so only when a hub task is actually built

    try:
        return datasets.load_dataset(path, config, split=split)
    except ConnectionError as err:
        where = f"{path} ({config})" if config else path
        raise HFDatasetUnavailableError(
            f"cannot load split {split!r} of {where}: the Hugging Face hub is unreachable and the "
            "split is not in the local cache; load it once with network access (it is then cached "
            "under HF_HOME) or run where the hub is reachable"
        ) from err


@dataclass(frozen=True)
class HFSource:
    """Where a data set lives on the hub, which labeled splits feed pool and test, and how a row
    becomes a binary example."""

    path: str
    config: str | None
    pool_split: str
    test_split: str
    to_record: RowFormatter
    description: str


# Test sets come from a labeled held-out split: GLUE's CoLA test labels are hidden (-1), and
# HellaSwag's and Cosmos QA's test splits carry no labels either, so those use validation.
# fmt: off
HF_SOURCES: dict[str, HFSource] = {
    "boolq": HFSource(
        "google/boolq", None, "train", "validation", boolq_record,
        "Is the answer to the yes/no question about the passage 'yes'? (BoolQ)",
    ),
    "hellaswag": HFSource(
        "Rowan/hellaswag", None, "train", "validation", hellaswag_record,
        "Is the shown ending the right continuation of the context? (HellaSwag)",
    ),
    "sciq": HFSource(
        # validation and test hold 1000 questions each: together they fill a 1000-example test set.
        "allenai/sciq", None, "train", "validation+test", sciq_record,
        "Is the shown answer to the science question correct? (SciQ)",
    ),
    "cola": HFSource(
        "nyu-mll/glue", "cola", "train", "validation", cola_record,
        "Is the sentence grammatically acceptable? (CoLA)",
    ),
    "cosmos_qa": HFSource(
        "allenai/cosmos_qa", None, "train", "validation", cosmos_qa_record,
        "Is the shown answer to the question about the context correct? (Cosmos QA)",
    ),
    "quail": HFSource(
        "textmachinelab/quail", None, "train", "validation", quail_record,
        "Is the shown answer to the question about the passage correct? (QuAIL)",
    ),
    "social_i_qa": HFSource(
        # allenai/social_i_qa is a loading script, which datasets>=4 refuses; lighteval/siqa is its
        # parquet copy with the same columns and rows (checked by lm-evaluation-harness PR #3943).
        "lighteval/siqa", None, "train", "validation", social_i_qa_record,
        "Is the shown answer to the social-situation question correct? (Social IQa)",
    ),
    "mmlu": HFSource(
        # MMLU has no train split of its own questions (auxiliary_train is ARC, RACE, OBQA and
        # MCTest), so the pool is the 14k-question test split and the test set the validation split.
        "cais/mmlu", "all", "test", "validation", mmlu_record,
        "Is the shown answer to the exam question correct? (MMLU)",
    ),
    "amazon_polarity": HFSource(
        "fancyzhx/amazon_polarity", None, "train", "test", amazon_polarity_record,
        "Is the product review positive? (Amazon polarity)",
    ),
}
# fmt: on


def _records(
    source: HFSource, split: str, wanted: int, load_split: LoadSplit, rng: np.random.Generator
) -> list[Record]:
    rows = sample_rows(load_split(source.path, source.config, split), wanted * _ROWS_PER_EXAMPLE, rng)
    return [source.to_record(row, rng) for row in rows]


def load_hf_task(
    name: str,
    *,
    load_split: LoadSplit = load_hf_split,
    n_test: int = DEFAULT_N_TEST,
    max_pool: int = DEFAULT_MAX_POOL,
) -> Task:
    """The binarized, balanced Task for the data set `name` (a key of HF_SOURCES)."""
    source = HF_SOURCES[name]
    # Separate streams, so that changing n_test leaves the pool's shown answers alone.
    test_rng, pool_rng, balance_rng = np.random.default_rng(_SEED).spawn(3)
    return task_from_records(
        name,
        pool_records=_records(source, source.pool_split, max_pool, load_split, pool_rng),
        test_records=_records(source, source.test_split, n_test, load_split, test_rng),
        n_test=n_test,
        max_pool=max_pool,
        rng=balance_rng,
        description=source.description,
        meta={
            "source": "huggingface",
            "hf_path": source.path,
            "hf_config": source.config,
            "pool_split": source.pool_split,
            "test_split": source.test_split,
            "seed": _SEED,
        },
    )


# The registry calls these with no arguments; tests pass `load_split` (and sizes) to the same ones.
HF_LOADERS: dict[str, Callable[..., Task]] = {
    name: functools.partial(load_hf_task, name) for name in HF_SOURCES
}
