"""The built-in tasks cannot be solved from surface cues: what they test is knowledge of places and words.

A baseline that knows nothing of the world (the answer's usual label in the pool; a bag of words
trained on the pool) must score chance on the test set, neither above (a shortcut) nor below
(a mirror statement across the pool/test split teaching the inverted answer).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from worker.engine.tasks import BUILTIN_TASKS, Split, Task, get_task
from worker.engine.tasks.cues import answer_of, cue_baselines


# The tasks of true and false statements; word_categories names classes (tests/engine/test_categories_task.py).
STATEMENT_TASKS = sorted(set(BUILTIN_TASKS) - {"word_categories"})


@pytest.fixture(scope="module", params=STATEMENT_TASKS)
def task(request) -> Task:
    return get_task(request.param)


def _label_counts(task: Task, split: Split) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for text, label in zip(split.texts, split.labels.tolist()):
        counts[answer_of(task.name, text)][label] += 1
    return counts


def test_cue_baselines_are_at_chance(task):
    baselines = cue_baselines(task)
    assert set(baselines) == {"answer_lookup", "bow"}
    for name, accuracy in baselines.items():
        assert abs(accuracy - 0.5) <= 0.05, (task.name, name, accuracy)


def test_each_answer_is_as_often_true_as_false(task):
    whole = Split(
        ids=[*task.pool.ids, *task.test.ids],
        texts=[*task.pool.texts, *task.test.texts],
        labels=np.concatenate([task.pool.labels, task.test.labels]),
    )
    for split, slack in ((whole, 1), (task.pool, 1), (task.test, 0)):
        for answer, counts in _label_counts(task, split).items():
            assert abs(counts[1] - counts[0]) <= slack, (task.name, answer, counts)


def test_city_name_words_do_not_tell_the_label():
    for name in ("cities", "city_continents"):
        task = get_task(name)
        seen, true = Counter(), Counter()
        for text, label in zip([*task.pool.texts, *task.test.texts], [*task.pool.labels, *task.test.labels]):
            for word in set(text.removeprefix("The city of ").rsplit(" is in ", 1)[0].lower().split()):
                seen[word] += 1
                true[word] += int(label)
        common = [w for w, n in seen.items() if n >= 100]
        assert common  # "de", "san", "al", ...
        for word in common:
            assert 0.35 <= true[word] / seen[word] <= 0.65, (name, word, true[word], seen[word])


def test_capital_pairs_stay_on_one_side_of_the_split():
    # A pair (A, B) is four statements: A-cap(A), B-cap(B) true; A-cap(B), B-cap(A) false. If each
    # country's two statements and each capital's statements sit on one side, so does the pair.
    task = get_task("capitals")
    for split in (task.pool, task.test):
        by_country: dict[str, Counter] = defaultdict(Counter)
        for text, label in zip(split.texts, split.labels.tolist()):
            by_country[text.removeprefix("The capital of ").split(" is ", 1)[0]][label] += 1
        assert all(counts == Counter({0: 1, 1: 1}) for counts in by_country.values())
        assert all(c[0] == c[1] for c in _label_counts(task, split).values())
    assert len(task.test) == 100  # 25 pairs


def test_answer_of():
    assert answer_of("cities", "The city of Lagoa da Confusão is in Brazil.") == "Brazil"
    assert answer_of("city_continents", "The city of Nova Prata is in South America.") == "South America"
    assert answer_of("capitals", "The capital of Vatican is Vatican City.") == "Vatican City"
    assert answer_of("word_sentiment", 'The word "grim" is negative.') == "negative"
    assert answer_of("reviews", "A fine film, truly.") == "truly"


def test_word_sentiment_shows_each_answer_exactly_as_often_true_as_false():
    # Stricter than the slack above: the two answers split exactly, in the pool and the test set.
    task = get_task("word_sentiment")
    for split in (task.pool, task.test):
        counts = _label_counts(task, split)
        assert set(counts) == {"positive", "negative"}
        assert all(c[0] == c[1] for c in counts.values()), counts
