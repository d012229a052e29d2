"""Turning rows of the paper's data sets into binary examples, and those into a balanced Task.

Everything here is pure: rows come in as mappings in each data set's Hugging Face schema, and
nothing touches the network (`hf.py` fetches the rows). The binarization follows Mallen & Belrose
(2024): a naturally binary set keeps its label; a multiple-choice item becomes one example that
shows either its correct answer (label 1) or one of its wrong answers (label 0), each with
probability 1/2. Pool and test are then deduplicated and undersampled to 50/50.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .base import Split, Task, balance, dedupe

Row = Mapping[str, Any]
Record = tuple[str, int]
# Every formatter takes the generator, so the loader can treat all data sets alike; the naturally
# binary ones ignore it.
RowFormatter = Callable[[Row, np.random.Generator], Record]


# ---------------------------------------------------------------- multiple choice -> binary


def wrong_answers(choices: Sequence[str], correct: int) -> list[str]:
    """The choices other than the correct one, leaving out any that repeat its very text:
    showing such a "wrong" answer would make a label-0 example true."""
    return [c for i, c in enumerate(choices) if i != correct and c != choices[correct]]


def binarize_multiple_choice(choices: Sequence[str], correct: int, rng: np.random.Generator) -> Record:
    """(shown answer, label): the correct answer with probability 1/2 (label 1), otherwise a
    uniformly chosen wrong one (label 0). An item with no distinct wrong answer can only show
    its correct one."""
    wrong = wrong_answers(choices, correct)
    if rng.random() < 0.5 or not wrong:
        return choices[correct], 1
    return wrong[rng.integers(len(wrong))], 0


# ---------------------------------------------------------------- one formatter per data set


def _qa_text(context_name: str, context: str, question: str, answer: str) -> str:
    return f"{context_name}: {context}\nQuestion: {question}\nAnswer: {answer}"


def boolq_record(row: Row, _rng: np.random.Generator) -> Record:
    # BoolQ questions are lower-cased and carry no question mark.
    return f"Passage: {row['passage']}\nQuestion: {row['question']}?", int(row["answer"])


def cola_record(row: Row, _rng: np.random.Generator) -> Record:
    return f"Sentence: {row['sentence']}\nIs this sentence grammatical?", int(row["label"])


def amazon_polarity_record(row: Row, _rng: np.random.Generator) -> Record:
    return f"Title: {row['title']}\nReview: {row['content']}", int(row["label"])


def hellaswag_record(row: Row, rng: np.random.Generator) -> Record:
    # `label` is the index of the right ending, stored as a string.
    ending, label = binarize_multiple_choice(row["endings"], int(row["label"]), rng)
    return f"Context: {row['ctx']}\nContinuation: {ending}", label


def sciq_record(row: Row, rng: np.random.Generator) -> Record:
    choices = [row["correct_answer"], row["distractor1"], row["distractor2"], row["distractor3"]]
    answer, label = binarize_multiple_choice(choices, 0, rng)
    qa = f"Q: {row['question']}\nA: {answer}"
    # About a tenth of SciQ questions come without a supporting passage.
    support = (row.get("support") or "").strip()
    return (f"Passage: {support}\n{qa}" if support else qa), label


# Cosmos QA's "None of the above choices ." answer reads as nonsense once shown on its own.
_NONE_OF_THE_ABOVE = "None of the above choices"


def cosmos_qa_record(row: Row, rng: np.random.Generator) -> Record:
    choices = [row[f"answer{i}"] for i in range(4)]
    correct = int(row["label"])
    wrong = wrong_answers(choices, correct)
    if _NONE_OF_THE_ABOVE in choices[correct] and wrong:
        # As in the paper's code: such an item only yields its wrong-answer example.
        answer, label = wrong[rng.integers(len(wrong))], 0
    else:
        answer, label = binarize_multiple_choice(choices, correct, rng)
    return _qa_text("Context", row["context"], row["question"], answer), label


def quail_record(row: Row, rng: np.random.Generator) -> Record:
    answer, label = binarize_multiple_choice(row["answers"], int(row["correct_answer_id"]), rng)
    return _qa_text("Passage", row["context"], row["question"], answer), label


def social_i_qa_record(row: Row, rng: np.random.Generator) -> Record:
    choices = [row["answerA"], row["answerB"], row["answerC"]]
    # `label` is 1-based ("1".."3").
    answer, label = binarize_multiple_choice(choices, int(row["label"]) - 1, rng)
    return _qa_text("Context", row["context"], row["question"], answer), label


def mmlu_record(row: Row, rng: np.random.Generator) -> Record:
    answer, label = binarize_multiple_choice(row["choices"], int(row["answer"]), rng)
    subject = str(row["subject"]).replace("_", " ")
    return f"Subject: {subject}\nQuestion: {row['question']}\nAnswer: {answer}", label


# ---------------------------------------------------------------- records -> Task


def sample_rows(rows: Sequence[Row], limit: int, rng: np.random.Generator) -> list[Row]:
    """At most `limit` rows, drawn at random and kept in split order: reading every row of a huge
    split (amazon_polarity's 3.6M) would cost minutes and gigabytes for examples never kept."""
    if len(rows) <= limit:
        return list(rows)
    picked = np.sort(rng.choice(len(rows), size=limit, replace=False))
    return [rows[int(i)] for i in picked]


def _cap_balanced(split: Split, limit: int) -> Split:
    """The first `limit // 2` of each class; `split` comes shuffled from `balance`, so this is a
    random balanced subset, kept in that shuffled order."""
    if len(split) <= limit:
        return split
    half = limit // 2
    pos = np.flatnonzero(split.labels == 1)[:half]
    neg = np.flatnonzero(split.labels == 0)[:half]
    return split.take(np.sort(np.concatenate([pos, neg])))


def balanced_split(
    records: list[Record], limit: int, rng: np.random.Generator, exclude_ids: frozenset[str] = frozenset()
) -> Split:
    """Deduplicated, without `exclude_ids`, undersampled to 50/50 and capped at `limit`."""
    split = dedupe(Split.from_records(records))
    split = split.take([i for i, sid in enumerate(split.ids) if sid not in exclude_ids])
    return _cap_balanced(balance(split, rng), limit)


def task_from_records(
    name: str,
    pool_records: list[Record],
    test_records: list[Record],
    *,
    n_test: int,
    max_pool: int,
    rng: np.random.Generator,
    description: str = "",
    meta: dict | None = None,
) -> Task:
    """A Task whose pool and test are balanced and share no example.

    The test set is built first so the pool can drop any text it also holds (some data sets
    repeat texts across their splits)."""
    test_rng, pool_rng = rng.spawn(2)
    test = balanced_split(test_records, n_test, test_rng)
    pool = balanced_split(pool_records, max_pool, pool_rng, exclude_ids=frozenset(test.ids))
    return Task(name=name, pool=pool, test=test, description=description, meta=dict(meta or {}))
