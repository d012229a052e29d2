"""The built-in `word_definitions` task from WordNet 3.0: deterministic, balanced, and leak-free.

The pinned values come from Debian's wordnet-base 1:3.0 (WordNet 3.0, unchanged since 2006); the
cue baselines for this task run with the other built-in tasks in test_task_cues.py.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from worker.engine.tasks import BUILTIN_TASKS, Task, task_version
from worker.engine.tasks.glosses import (
    MAX_DEFINITION_WORDS,
    WordNetMissingError,
    mentions,
    senses,
    word_definitions_task,
)
from worker.engine.tasks.lexicon import FAMILY_PREFIX

from test_lexicon_task import parsed as parsed_as

STATEMENT = re.compile(r'^The word "([a-z]+)" can mean: (.+)\.$')


@pytest.fixture(scope="module")
def task() -> Task:
    return word_definitions_task()


def parsed(split) -> list[tuple[str, str, int]]:
    """(word, definition, label) per statement."""
    return parsed_as(split, STATEMENT)


def test_registered():
    assert BUILTIN_TASKS["word_definitions"] is word_definitions_task
    assert task_version("word_definitions") == 1


def test_pinned(task):
    assert (len(task.pool), len(task.test)) == (20218, 1000)
    assert len(task.pool) >= 20_000  # budgets up to thousands of gold labels
    assert task.meta == {"source": "wordnet", "version": 1}
    assert task.pool.texts[:2] == PINNED_POOL_HEAD
    assert task.test.texts[:1] == PINNED_TEST_HEAD


def test_deterministic(task):
    again = word_definitions_task()
    assert again.pool.texts == task.pool.texts and again.test.texts == task.test.texts


def test_each_word_and_definition_once_true_once_false(task):
    for split in (task.pool, task.test):
        by_word: dict[str, Counter] = defaultdict(Counter)
        by_definition: dict[str, Counter] = defaultdict(Counter)
        for word, definition, label in parsed(split):
            by_word[word][label] += 1
            by_definition[definition][label] += 1
        assert all(c == Counter({0: 1, 1: 1}) for c in by_word.values())
        assert all(c == Counter({0: 1, 1: 1}) for c in by_definition.values())
        assert split.labels.mean() == 0.5


def test_no_word_family_or_definition_crosses_the_split(task):
    pool, test = parsed(task.pool), parsed(task.test)
    pool_prefixes = {w[:FAMILY_PREFIX] for w, _, _ in pool}
    assert not {w[:FAMILY_PREFIX] for w, _, _ in test} & pool_prefixes
    assert not {d for _, d, _ in test} & {d for _, d, _ in pool}


def test_no_statement_names_its_word(task):
    # A definition naming the word ("filmed": "recorded on film") would mark true statements, and a
    # borrowed one naming it would mark false ones.
    for split in (task.pool, task.test):
        for word, definition, _ in parsed(split):
            assert not mentions(definition, word), (word, definition)
            assert 2 <= len(definition.split()) <= MAX_DEFINITION_WORDS


def test_mentions():
    assert mentions("recorded on film", "filmed")
    assert mentions("a dogged pursuit", "dog")
    assert mentions("the act of running", "runnings")
    assert mentions("of or relating to or measured in ohms", "ohmic")
    assert not mentions("a sheltered port where ships can take on cargo", "harbor")


def _write_wordnet(folder, index_lines: dict[str, list[str]], data_lines: dict[str, list[str]]) -> None:
    for pos in ("noun", "verb", "adj", "adv"):
        header = "  1 This software and database is being provided to you, the LICENSEE ...\n"
        (folder / f"index.{pos}").write_text(header + "".join(f"{line}\n" for line in index_lines.get(pos, [])))
        (folder / f"data.{pos}").write_text(header + "".join(f"{line}\n" for line in data_lines.get(pos, [])))


def test_senses_read_wordnet_files(tmp_path):
    # Lines in WordNet's own formats (wndb(5)): the most frequent sense is the first offset listed.
    _write_wordnet(
        tmp_path,
        index_lines={
            "noun": [
                "harbor n 2 2 @ ~ 2 1 00000100 00000200",  # tagged once: kept, its first sense
                "abampere n 1 1 @ 1 0 00000300",  # never sense-tagged: left out
                "run n 1 0 1 1 00000400",  # also a verb, tagged more often there
                "haven n 1 0 1 1 00000100",  # shares harbor's synset, listed after it: left out
            ],
            "verb": ["run v 1 0 1 5 00000500"],
        },
        data_lines={
            "noun": [
                '00000100 06 n 01 harbor 0 000 | a sheltered port where ships can take on cargo; "a safe harbor"',
                "00000200 06 n 01 harbor 1 000 | a place of refuge",
                "00000300 06 n 01 abampere 0 000 | a unit of current equal to 10 amperes",
                "00000400 06 n 01 run 0 000 | a score in baseball made by a runner",
            ],
            "verb": ["00000500 38 v 01 run 0 000 | move fast by using one's feet"],
        },
    )
    got = {(s.word, s.pos, s.definition, s.tagged) for s in senses(tmp_path)}
    assert got == {
        ("harbor", "noun", "a sheltered port where ships can take on cargo", 1),
        ("run", "verb", "move fast by using one's feet", 5),
    }


def test_missing_wordnet_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELMIX_WORDNET_DIR", str(tmp_path))
    with pytest.raises(WordNetMissingError, match="apt-get install wordnet-base"):
        word_definitions_task()


PINNED_POOL_HEAD = [
    'The word "grove" can mean: a small growth of trees without underbrush.',
    'The word "rubbish" can mean: worthless material that is to be disposed of.',
]
PINNED_TEST_HEAD = ['The word "semiprecious" can mean: of or in or relating to the nose.']
