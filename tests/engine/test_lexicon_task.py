"""The built-in `word_sentiment` task from the VADER lexicon: deterministic, balanced, and true.

The pinned values come from vadersentiment 3.3.2 (pinned in pyproject.toml); a new release may
change them, and with them every stored trial on this task, which these pins are here to catch.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from worker.engine.tasks import BUILTIN_TASKS, Task, task_version
from worker.engine.tasks.lexicon import (
    BLOCKLIST,
    FAMILY_PREFIX,
    MAX_STD,
    MIN_ABS_MEAN,
    MIN_LENGTH,
    clear_words,
    families,
    lexicon_rows,
    word_sentiment_task,
)

STATEMENT = re.compile(r'^The word "([a-z]+)" is (positive|negative)\.$')


@pytest.fixture(scope="module")
def task() -> Task:
    return word_sentiment_task()


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, float, float]]:
    return lexicon_rows()


def parsed(split, statement: re.Pattern = STATEMENT) -> list[tuple[str, str, int]]:
    """(its two groups, label) per statement, each matching `statement`: here (word, answer shown)."""
    out = []
    for text, label in zip(split.texts, split.labels.tolist()):
        match = statement.match(text)
        assert match, text
        out.append((match.group(1), match.group(2), label))
    return out


def test_registered():
    assert BUILTIN_TASKS["word_sentiment"] is word_sentiment_task
    assert task_version("word_sentiment") == 1


def test_pinned(task):
    assert task.name == "word_sentiment"
    assert (len(task.pool), len(task.test)) == (3526, 1000)
    assert task.meta == {"source": "vadersentiment", "version": 1}
    assert task.description == "Is the word's sentiment as stated? (VADER lexicon)"
    assert task.pool.texts[:2] == [
        'The word "disappointingly" is negative.',
        'The word "criminals" is negative.',
    ]
    assert task.test.texts[:2] == ['The word "spiritless" is negative.', 'The word "sick" is negative.']


def test_clear_words_pinned(rows):
    words = clear_words(rows)
    assert (len(words), sum(words.values())) == (5066, 2263)  # 2,263 positive, 2,803 negative


def test_deterministic(task):
    again = word_sentiment_task()
    for a, b in ((task.pool, again.pool), (task.test, again.test)):
        assert a.ids == b.ids and a.texts == b.texts
        assert np.array_equal(a.labels, b.labels)


def test_balanced_disjoint_and_each_word_once(task):
    for split in (task.pool, task.test):
        assert int(split.labels.sum()) * 2 == len(split)
        assert len(set(split.ids)) == len(split)
    assert not set(task.pool.ids) & set(task.test.ids)
    words = [w for w, _, _ in parsed(task.pool) + parsed(task.test)]
    assert len(words) == len(set(words))
    assert task.pool.weak_probs is None


def test_statements_are_true_exactly_when_the_polarity_matches_the_lexicon(task, rows):
    rating = {token: (mean, std) for token, mean, std in rows}
    listed = Counter(token for token, _, _ in rows)
    for word, answer, label in parsed(task.pool) + parsed(task.test):
        mean, std = rating[word]
        assert listed[word] == 1 and len(word) >= MIN_LENGTH
        assert abs(mean) >= MIN_ABS_MEAN and std <= MAX_STD, word
        assert (answer == ("positive" if mean > 0 else "negative")) == bool(label), (word, mean, answer)


def test_each_polarity_and_answer_is_balanced_in_pool_and_test(task, rows):
    polarity = clear_words(rows)
    for split in (task.pool, task.test):
        statements = parsed(split)
        # As many positive as negative words, and each answer shown as often true as false.
        assert sum(polarity[w] for w, _, _ in statements) * 2 == len(statements)
        for answer in ("positive", "negative"):
            labels = Counter(label for _, a, label in statements if a == answer)
            assert labels[0] == labels[1] > 0, (answer, labels)


def test_no_emoticons_acronyms_or_doubly_listed_tokens(task, rows):
    words = {w for w, _, _ in parsed(task.pool) + parsed(task.test)}
    # "bff", "aayf": chat acronyms that open the lexicon; "lol", "sob": listed twice, two ratings.
    assert not words & {"bff", "aayf", "lol", "sob", "wtf"}
    assert {"good", "evil"} <= set(clear_words(rows))


def test_a_smaller_test_set(task):
    small = word_sentiment_task(n_test=500)
    assert len(small.test) == 500 and len(small.pool) == len(task.pool) + 500
    assert int(small.test.labels.sum()) == 250


def test_word_families_stay_on_one_side_of_the_split(task):
    # A test word's relatives ("abandoned" for "abandoner") in the pool would teach its polarity.
    pool = [w for w, _, _ in parsed(task.pool)]
    test = [w for w, _, _ in parsed(task.test)]
    pool_prefixes = {w[:FAMILY_PREFIX] for w in pool}
    assert not [w for w in test if w[:FAMILY_PREFIX] in pool_prefixes]
    # Nor does a short word sit on the other side from a word it begins ("fear" and "fearing").
    for short_side, other_side in ((pool, test), (test, pool)):
        for short in (w for w in short_side if len(w) < FAMILY_PREFIX):
            assert not [w for w in other_side if w.startswith(short)], short


def test_families():
    assert families(["abandon", "abandoned", "abandoner", "fear", "fears", "fearing", "sad", "safe"]) == {
        "abandon": "aband",
        "abandoned": "aband",
        "abandoner": "aband",
        "fear": "fear",
        "fears": "fear",
        "fearing": "fear",
        "sad": "sad",
        "safe": "safe",
    }
    # Joined through a short word that begins both: "lie" joins "lied" and "lies", "lies" "liest".
    assert set(families(["lie", "lied", "lies", "liest", "lift"]).values()) == {"lie", "lift"}


def test_no_slurs_or_profanity(task, rows):
    words = {w for w, _, _ in parsed(task.pool) + parsed(task.test)}
    assert {"fag", "faggot", "nigger", "retard", "retarded", "tard", "slut", "twat", "whore"} <= BLOCKLIST
    assert not words & BLOCKLIST
    assert not set(clear_words(rows)) & BLOCKLIST
    # Each blocked word would otherwise be in the task: a token of the lexicon, clearly rated.
    rating = {token: (mean, std) for token, mean, std in rows}
    assert all(abs(rating[w][0]) >= MIN_ABS_MEAN and rating[w][1] <= MAX_STD for w in BLOCKLIST)


def test_test_size_must_be_even_and_attainable():
    with pytest.raises(ValueError):
        word_sentiment_task(n_test=999)
    with pytest.raises(ValueError):
        word_sentiment_task(n_test=10_000)
