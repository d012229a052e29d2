"""The built-in `word_definitions` task, generated deterministically from WordNet 3.0's glosses.

'The word "harbor" can mean: a sheltered port where ships can take on or discharge cargo.': true
when the definition is the word's most frequent sense in WordNet, false when it is the most
frequent sense of another word of the same part of speech. Each word is shown once with its own
definition and once with another's, and each definition once with its own word and once with
another, so neither the word nor the definition tells the label: a model has to know what the word
means. Its 10,609 words make 20,218 pool statements, enough for budgets of thousands of gold
labels (word_sentiment's pool holds 3,526), and 1,000 test statements.

The data is Debian's `wordnet-base` package (Princeton's WordNet 3.0 license, which allows use and
redistribution with its notice), read from /usr/share/wordnet or LABELMIX_WORDNET_DIR.

Kept: single lowercase words of three letters or more (not names: "darwin" is WordNet's index entry
for "Darwin") whose first sense occurs in WordNet's
sense-tagged corpus (SemCor), so the words are ones people use (WordNet also lists "abampere" and
"zygospore"), with a definition of at most MAX_DEFINITION_WORDS words that does not contain the
word's first FAMILY_PREFIX letters ("dog": "a dog that ..." gives itself away). A synset shared by
two words ("car", "auto") is shown with the first of them only, and so is a definition that two
synsets share up to its first ';'. As in word_sentiment, word families
("bank", "banker", "banking") go to one side of the pool/test split, and word_sentiment's blocklist
of slurs and strong profanity applies here too.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from .base import Split, Task
from .lexicon import BLOCKLIST, FAMILY_PREFIX, families

_GENERATION_SEED = 20240917
TASK_VERSIONS = {"word_definitions": 1}

T = TypeVar("T")

TEMPLATE = 'The word "{word}" can mean: {definition}.'
DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
# The parts of speech in WordNet's file names; a word listed under several keeps the one with the
# most sense-tagged occurrences (ties: this order).
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
MIN_LENGTH = 3
MAX_DEFINITION_WORDS = 16  # keeps statements under ~30 tokens (longer ones cost training time) and the pool over 20,000
MIN_DEFINITION_WORDS = 2


class WordNetMissingError(RuntimeError):
    def __str__(self) -> str:
        return (
            f"WordNet not found in {self.args[0]}: install Debian's wordnet-base package "
            "(apt-get install wordnet-base) or set LABELMIX_WORDNET_DIR to a WordNet 3.0 dict folder"
        )


@dataclass(frozen=True)
class Sense:
    word: str
    pos: str
    definition: str
    tagged: int  # sense-tagged occurrences of the word in SemCor, all its senses


def wordnet_dir() -> Path:
    path = Path(os.environ.get("LABELMIX_WORDNET_DIR", DEFAULT_WORDNET_DIR))
    if not (path / "index.noun").is_file():
        raise WordNetMissingError(path)
    return path


def _definitions(data_file: Path) -> dict[str, tuple[str, set[str]]]:
    """Synset offset -> (its definition: the gloss up to its first ';', where examples follow; its
    words as the synset writes them, lowercase ones only).

    A data line is `offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] ... | gloss`, w_cnt
    in hexadecimal (wndb(5)). The index lists every lemma in lowercase, "darwin" too: the synset's own
    spelling ("Darwin") tells a name from a word.
    """
    out = {}
    with data_file.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):  # the license header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            n_words = int(fields[3], 16)
            words = {w for w in fields[4 : 4 + 2 * n_words : 2] if w.islower()}
            out[fields[0]] = (gloss.split(";", 1)[0].strip(), words)
    return out


def _first_senses(pos: str, folder: Path) -> list[tuple[str, str, int]]:
    """(word, offset of its most frequent sense, tagged count) for each word in index.<pos>.

    An index line is `lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offsets...`,
    its offsets ordered by frequency (WordNet's index format, wndb(5)).
    """
    out = []
    with (folder / f"index.{pos}").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):
                continue
            fields = line.split()
            n_pointers = int(fields[3])
            tagged = int(fields[5 + n_pointers])
            out.append((fields[0], fields[6 + n_pointers], tagged))
    return out


def _keeps(word: str, definition: str) -> bool:
    n_words = len(definition.split())
    return (
        word.isascii()
        and word.isalpha()
        and word.islower()
        and len(word) >= MIN_LENGTH
        and word not in BLOCKLIST
        and MIN_DEFINITION_WORDS <= n_words <= MAX_DEFINITION_WORDS
        and not mentions(definition, word)
    )


def mentions(definition: str, word: str) -> bool:
    """Whether the definition names the word or a relative: a token that begins with the word ("dog":
    "dogged"), or one that shares its first FAMILY_PREFIX letters with the word, or, at four letters
    or more, all its letters but the last ("ohmic": "measured in ohms"; "filmed": "recorded on film").
    Cautious: "thatch" is left out for its definition's "that"."""
    for token in re.findall(r"[a-z]+", definition.lower()):
        if token[:FAMILY_PREFIX] == word[:FAMILY_PREFIX] or token.startswith(word):
            return True
        if len(token) >= 4 and len(os.path.commonprefix([token, word])) >= min(len(token) - 1, FAMILY_PREFIX):
            return True
    return False


def senses(folder: Path | None = None) -> list[Sense]:
    """One sense per kept word (see the module docstring), sorted by word."""
    folder = folder or wordnet_dir()
    best: dict[str, Sense] = {}
    used_synsets: set[tuple[str, str]] = set()
    used_definitions: set[str] = set()
    for pos in PARTS_OF_SPEECH:
        definitions = _definitions(folder / f"data.{pos}")
        for word, offset, tagged in sorted(_first_senses(pos, folder)):
            definition, spelled = definitions[offset]
            if word not in spelled:  # a name ("Darwin"), or the adjective's "(p)" marker form
                continue
            if tagged < 1 or not _keeps(word, definition) or (pos, offset) in used_synsets:
                continue
            if definition in used_definitions or (word in best and best[word].tagged >= tagged):
                continue
            used_synsets.add((pos, offset))
            used_definitions.add(definition)
            best[word] = Sense(word, pos, definition, tagged)
    return [best[w] for w in sorted(best)]


def split_families(by_word: dict[str, T], n_test_words: int, rng: np.random.Generator) -> tuple[list[T], list[T]]:
    """(pool, test) values of `by_word`, whole word families on each side; the test side holds
    n_test_words (word_definitions' senses, word_categories' words)."""
    members: dict[str, list[T]] = defaultdict(list)
    for word, key in families(by_word).items():
        members[key].append(by_word[word])
    pool: list[T] = []
    test: list[T] = []
    for key in rng.permutation(sorted(members)).tolist():
        group = members[key]
        (test if len(test) + len(group) <= n_test_words else pool).extend(group)
    if len(test) != n_test_words:
        raise ValueError(f"not enough word families for {n_test_words} test words")
    return pool, test


def _derangement(group: list[Sense], rng: np.random.Generator) -> list[Sense]:
    """The group in an order where each word's next (cyclically) lends it a false definition that
    does not name it (`mentions`): true definitions never do, so such a one would mark the false
    statements."""
    order = [group[i] for i in rng.permutation(len(group))]
    for _ in range(100 * len(order)):
        clashes = [
            i for i, s in enumerate(order) if mentions(order[(i + 1) % len(order)].definition, s.word)
        ]
        if not clashes:
            return order
        i, j = (clashes[0] + 1) % len(order), int(rng.integers(len(order)))
        order[i], order[j] = order[j], order[i]
    raise ValueError("no clash-free pairing of definitions")


def _statements(words: list[Sense], rng: np.random.Generator) -> list[tuple[str, int]]:
    """Two statements per word, its own definition (true) and the next word's (false), pairing words
    within one part of speech so the definition's grammar ("to ...", "having ...") is no cue."""
    records: list[tuple[str, int]] = []
    by_pos: dict[str, list[Sense]] = defaultdict(list)
    for sense in words:
        by_pos[sense.pos].append(sense)
    for pos in PARTS_OF_SPEECH:
        if len(by_pos[pos]) < 2:
            continue  # a lone word has no other definition to borrow; it is left out
        order = _derangement(by_pos[pos], rng)
        for i, sense in enumerate(order):
            lender = order[(i + 1) % len(order)]
            records.append((TEMPLATE.format(word=sense.word, definition=sense.definition), 1))
            records.append((TEMPLATE.format(word=sense.word, definition=lender.definition), 0))
    return [records[i] for i in rng.permutation(len(records))]


def word_definitions_task(n_test: int = 1000) -> Task:
    """'The word "X" can mean: <definition>.': WordNet 3.0 words with their own or another's sense."""
    if n_test <= 0 or n_test % 2:
        raise ValueError(f"n_test must be a positive even number, not {n_test}")
    rng = np.random.default_rng(_GENERATION_SEED)
    pool_words, test_words = split_families({s.word: s for s in senses()}, n_test // 2, rng)
    test = _statements(test_words, rng)
    if len(test) != n_test:  # a part of speech with a single test word
        raise ValueError(f"the test split holds {len(test)} statements, not {n_test}")
    return Task(
        name="word_definitions",
        pool=Split.from_records(_statements(pool_words, rng)),
        test=Split.from_records(test),
        description="Is this what the word means? (WordNet 3.0 definitions)",
        meta={"source": "wordnet", "version": TASK_VERSIONS["word_definitions"]},
    )
