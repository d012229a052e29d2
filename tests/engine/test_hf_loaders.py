"""The paper's Hugging Face data sets, loaded from rows written in each set's real schema.

Nothing here reaches the hub: every loader gets a fake `load_split`, and the one check of the
default loader runs it offline against an empty cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from worker.engine.tasks import task_names
from worker.engine.tasks.base import Task, stable_id
from worker.engine.tasks.binarize import binarize_multiple_choice, cosmos_qa_record, wrong_answers
from worker.engine.tasks.hf import HF_LOADERS, HF_SOURCES, HFDatasetUnavailableError, load_hf_split

Row = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One data set: where its splits live, rows in its schema, and what each text must show."""

    path: str
    config: str | None
    pool_split: str
    test_split: str
    make_row: Callable[[int], Row]
    pieces: Callable[[Row], list[str]]  # context that every text of the row contains
    correct: Callable[[Row], str] | None = None  # multiple choice: the right answer ...
    wrong: Callable[[Row], list[str]] | None = None  # ... and the wrong ones
    label: Callable[[Row], int] | None = None  # naturally binary: the gold label


# Rows are numbered; the number sits in a bracketed tag inside the question (or sentence), so a
# text can be traced back to its row, and answers carry tags that no other answer contains.
TAG = re.compile(r"\[#(\d+)\]")


def boolq_row(i: int) -> Row:
    return {
        "question": f"is the river [#{i}] longer than the canal",
        "answer": i % 3 != 0,  # bool, skewed towards True as in BoolQ
        "passage": f"The river [#{i}] runs for {100 + i} miles; the canal for 40.",
    }


def hellaswag_row(i: int) -> Row:
    return {
        "ind": i,
        "activity_label": "Cooking",
        "ctx_a": f"A man [#{i}] cracks eggs into a bowl.",
        "ctx_b": "he",
        "ctx": f"A man [#{i}] cracks eggs into a bowl. he",
        "endings": [f"whisks them <{i}:{k}>." for k in range(4)],
        "source_id": f"activitynet~v_{i}",
        "split": "train",
        "split_type": "indomain",
        "label": str(i % 4),  # a digit, as a string
    }


def sciq_row(i: int) -> Row:
    return {
        "question": f"What gas [#{i}] do plants take in?",
        "distractor1": f"oxygen <{i}:1>",
        "distractor2": f"nitrogen <{i}:2>",
        "distractor3": f"helium <{i}:3>",
        "correct_answer": f"carbon dioxide <{i}:0>",
        "support": "" if i % 4 == 0 else f"Plants [#{i}] use carbon dioxide in photosynthesis.",
    }


def cola_row(i: int) -> Row:
    good = i % 3 != 0  # CoLA is about 70% acceptable
    sentence = f"The dog [#{i}] chased the cat." if good else f"The dog [#{i}] the cat chased chased."
    return {"sentence": sentence, "label": int(good), "idx": i}


def cosmos_qa_row(i: int) -> Row:
    return {
        "id": f"cosmos-{i}",
        "context": f"I missed the bus [#{i}] this morning, so I walked.",
        "question": f"Why did I walk [#{i}]?",
        **{f"answer{k}": f"Because <{i}:{k}>." for k in range(4)},
        "label": i % 4,
    }


def quail_row(i: int) -> Row:
    return {
        "id": f"quail-{i}",
        "context_id": f"c{i}",
        "question_id": f"q{i}",
        "domain": "fiction",
        "metadata": {"author": "", "title": "", "url": ""},
        "context": f"Mara [#{i}] packed her bags and left town before dawn.",
        "question": f"When did Mara [#{i}] leave?",
        "question_type": "Temporal_order",
        "answers": [f"at time <{i}:{k}>" for k in range(4)],
        "correct_answer_id": (i + 1) % 4,
    }


def social_i_qa_row(i: int) -> Row:
    return {
        "context": f"Jordan [#{i}] gave Casey a ride home after work.",
        "question": f"How would Casey [#{i}] feel as a result?",
        "answerA": f"grateful <{i}:0>",
        "answerB": f"angry <{i}:1>",
        "answerC": f"bored <{i}:2>",
        "label": str(i % 3 + 1),  # 1-based, as a string
    }


def mmlu_row(i: int) -> Row:
    return {
        "question": f"What is {i} [#{i}] plus one?",
        "subject": "elementary_mathematics",
        "choices": [f"value <{i}:{k}>" for k in range(4)],
        "answer": (i * 3) % 4,
    }


def amazon_polarity_row(i: int) -> Row:
    return {
        "label": i % 2,
        "title": f"Review [#{i}]",
        "content": f"This kettle [#{i}] " + ("works great." if i % 2 else "broke in a week."),
    }


def _choice(idx: Callable[[Row], int], options: Callable[[Row], list[str]]) -> dict[str, Callable]:
    """`correct` and `wrong` for a multiple-choice case, from the right index and the options."""
    return {
        "correct": lambda r: options(r)[idx(r)],
        "wrong": lambda r: [c for k, c in enumerate(options(r)) if k != idx(r)],
    }


def _cosmos_options(r: Row) -> list[str]:
    return [r[f"answer{k}"] for k in range(4)]


def _siqa_options(r: Row) -> list[str]:
    return [r["answerA"], r["answerB"], r["answerC"]]


def _sciq_options(r: Row) -> list[str]:
    return [r["correct_answer"], r["distractor1"], r["distractor2"], r["distractor3"]]


# fmt: off
CASES: dict[str, Case] = {
    "boolq": Case(
        "google/boolq", None, "train", "validation", boolq_row,
        pieces=lambda r: [r["question"], r["passage"], "Passage:", "Question:"],
        label=lambda r: int(r["answer"]),
    ),
    "hellaswag": Case(
        "Rowan/hellaswag", None, "train", "validation", hellaswag_row,
        pieces=lambda r: [r["ctx"]],
        **_choice(lambda r: int(r["label"]), lambda r: r["endings"]),
    ),
    "sciq": Case(
        "allenai/sciq", None, "train", "validation+test", sciq_row,
        pieces=lambda r: [r["question"], r["support"], "Q:", "A:"],
        **_choice(lambda r: 0, _sciq_options),
    ),
    "cola": Case(
        "nyu-mll/glue", "cola", "train", "validation", cola_row,
        pieces=lambda r: [r["sentence"]],
        label=lambda r: r["label"],
    ),
    "cosmos_qa": Case(
        "allenai/cosmos_qa", None, "train", "validation", cosmos_qa_row,
        pieces=lambda r: [r["context"], r["question"]],
        **_choice(lambda r: r["label"], _cosmos_options),
    ),
    "quail": Case(
        "textmachinelab/quail", None, "train", "validation", quail_row,
        pieces=lambda r: [r["context"], r["question"]],
        **_choice(lambda r: r["correct_answer_id"], lambda r: r["answers"]),
    ),
    "social_i_qa": Case(
        "lighteval/siqa", None, "train", "validation", social_i_qa_row,
        pieces=lambda r: [r["context"], r["question"]],
        **_choice(lambda r: int(r["label"]) - 1, _siqa_options),
    ),
    "mmlu": Case(
        "cais/mmlu", "all", "test", "validation", mmlu_row,
        pieces=lambda r: [r["question"], "elementary mathematics"],
        **_choice(lambda r: r["answer"], lambda r: r["choices"]),
    ),
    "amazon_polarity": Case(
        "fancyzhx/amazon_polarity", None, "train", "test", amazon_polarity_row,
        pieces=lambda r: [r["title"], r["content"]],
        label=lambda r: r["label"],
    ),
}
# fmt: on

N_POOL_ROWS, N_TEST_ROWS = 20, 12


def _rows(case: Case) -> dict[str, list[Row]]:
    """Pool rows 0..19, test rows 100..111, plus the mistakes real splits have: a row repeated
    within the pool split, and a test row that also sits in the pool split."""
    pool = [case.make_row(i) for i in range(N_POOL_ROWS)]
    test = [case.make_row(100 + i) for i in range(N_TEST_ROWS)]
    return {case.pool_split: [*pool, pool[0], *test[:4]], case.test_split: test}


def fake_loader(case: Case, calls: list | None = None):
    splits = _rows(case)

    def load_split(path: str, config: str | None, split: str) -> list[Row]:
        # Asking for any other data set or split fails loudly: it pins where each loader reads.
        assert (path, config) == (case.path, case.config)
        if calls is not None:
            calls.append(split)
        return splits[split]

    return load_split


def load(name: str, **sizes) -> Task:
    return HF_LOADERS[name](load_split=fake_loader(CASES[name]), **sizes)


def rows_by_number(case: Case) -> dict[int, Row]:
    return {int(TAG.search(str(r)).group(1)): r for rows in _rows(case).values() for r in rows}


NAMES = list(CASES)


def test_every_paper_data_set_is_registered():
    assert set(HF_LOADERS) == set(HF_SOURCES) == set(CASES)
    assert set(CASES) <= set(task_names())


@pytest.mark.parametrize("name", NAMES)
def test_reads_the_right_splits_and_records_them(name: str):
    case, calls = CASES[name], []
    task = HF_LOADERS[name](load_split=fake_loader(case, calls))
    assert sorted(calls) == sorted([case.pool_split, case.test_split])
    assert task.name == name and task.description
    assert task.meta["hf_path"] == case.path
    assert task.meta["hf_config"] == case.config
    assert (task.meta["pool_split"], task.meta["test_split"]) == (case.pool_split, case.test_split)


@pytest.mark.parametrize("name", NAMES)
def test_pool_and_test_are_binary_balanced_and_disjoint(name: str):
    task = load(name)
    for split in (task.pool, task.test):
        assert len(split) >= 2
        assert set(np.unique(split.labels)) == {0, 1}
        assert split.labels.sum() * 2 == len(split)
        assert split.ids == [stable_id(t) for t in split.texts]
        assert len(set(split.ids)) == len(split)
    assert not set(task.pool.ids) & set(task.test.ids)


@pytest.mark.parametrize("name", NAMES)
def test_texts_show_the_row_and_the_right_kind_of_answer(name: str):
    case, task = CASES[name], load(name)
    rows = rows_by_number(case)
    for split in (task.pool, task.test):
        for text, label in zip(split.texts, split.labels, strict=True):
            row = rows[int(TAG.search(text).group(1))]
            for piece in case.pieces(row):
                assert piece in text
            if case.label is not None:
                assert label == case.label(row)
                continue
            shows_correct = case.correct(row) in text
            shown_wrong = [w for w in case.wrong(row) if w in text]
            assert (shows_correct, len(shown_wrong)) == ((True, 0) if label == 1 else (False, 1))


@pytest.mark.parametrize("name", NAMES)
def test_loading_is_deterministic(name: str):
    a, b = load(name), load(name)
    for sa, sb in ((a.pool, b.pool), (a.test, b.test)):
        assert sa.ids == sb.ids and sa.texts == sb.texts
        assert np.array_equal(sa.labels, sb.labels)


@pytest.mark.parametrize(("n_test", "max_pool"), [(4, 6), (6, 10), (10, 22), (20, 40)])
def test_sizes_are_capped_and_stay_balanced(n_test: int, max_pool: int):
    def thousand_rows(path: str, config: str | None, split: str) -> list[Row]:
        first = 0 if split == "train" else 10_000
        return [amazon_polarity_row(first + i) for i in range(1000)]

    task = HF_LOADERS["amazon_polarity"](load_split=thousand_rows, n_test=n_test, max_pool=max_pool)
    assert len(task.test) == n_test and task.test.labels.sum() * 2 == n_test
    assert len(task.pool) == max_pool and task.pool.labels.sum() * 2 == max_pool


def test_multiple_choice_shows_each_answer_kind_half_the_time():
    rng = np.random.default_rng(0)
    shown = [binarize_multiple_choice(["right", "w1", "w2", "w3"], 0, rng) for _ in range(4000)]
    labels = np.array([y for _, y in shown])
    assert abs(labels.mean() - 0.5) < 0.03
    assert all((a == "right") == (y == 1) for a, y in shown)
    wrong_counts = [sum(a == w for a, _ in shown) for w in ("w1", "w2", "w3")]
    assert max(wrong_counts) - min(wrong_counts) < 150  # uniform over the wrong answers


def test_a_wrong_answer_never_repeats_the_right_one():
    assert wrong_answers(["same", "same", "other"], 0) == ["other"]
    rng = np.random.default_rng(0)
    assert {binarize_multiple_choice(["same", "same"], 1, rng) for _ in range(20)} == {("same", 1)}


def test_cosmos_none_of_the_above_items_only_show_a_wrong_answer():
    row = {**cosmos_qa_row(1), "answer1": "None of the above choices .", "label": 1}
    rng = np.random.default_rng(0)
    for _ in range(20):
        text, label = cosmos_qa_record(row, rng)
        assert label == 0 and "None of the above" not in text


def test_default_loader_never_trusts_remote_code_and_explains_an_unreachable_hub(monkeypatch):
    calls = []

    def load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("Couldn't reach 'google/boolq' on the Hub (OfflineModeIsEnabled)")

    # A stand-in module: the real `datasets` is neither imported nor asked for anything.
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(HFDatasetUnavailableError, match="google/boolq.*unreachable"):
        load_hf_split("google/boolq", None, "train")
    assert calls == [(("google/boolq", None), {"split": "train"})]


def test_real_loader_offline_with_an_empty_cache_raises_the_clear_error(tmp_path):
    """The real `datasets`, in offline mode, so nothing can reach the network."""
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    script = (
        "from worker.engine.tasks.hf import HF_LOADERS, HFDatasetUnavailableError\n"
        "try:\n    HF_LOADERS['boolq']()\n"
        "except HFDatasetUnavailableError as e:\n    print('CLEAR:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert "CLEAR: cannot load split" in out.stdout, out.stderr[-2000:]
