"""The built-in `word_categories` task: what kind of thing a noun names, one of five classes.

'The word "cheetah".' is an animal; "fennel" a plant, "plumber" a person, "trowel" an artifact,
"lasagna" a food. The classes are WordNet 3.0's lexicographer files (its "supersenses":
noun.animal, noun.plant, noun.person, noun.artifact, noun.food; wndb(5) and lexnames(5) number
them 05, 20, 18, 06 and 13). Kept: single lowercase words of three letters or more (not names:
the index lowercases "Sperry") whose every noun sense lies in one of those files, so the label is the word's, not one sense's ("crane", a
bird and a machine, is left out). The classes keep WordNet's proportions (artifacts are the most
common): chance is the majority class's rate, not 1/5. As in the other word tasks, word families
("bake", "baker", "bakery") go to one side of the pool/test split, and the blocklist applies.

It is labelmix's task of more than two classes: every method runs on it with a 5-way head, the
class names as a prompt's answers, and weak labels as class distributions. Data: Debian's
`wordnet-base` (see glosses.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Split, Task
from .glosses import split_families, wordnet_dir
from .lexicon import BLOCKLIST

_GENERATION_SEED = 20261206
TASK_VERSIONS = {"word_categories": 1}

TEMPLATE = 'The word "{word}".'
# Class name -> WordNet lexicographer file number (lexnames(5)).
CATEGORIES = {"animal": 5, "plant": 20, "person": 18, "artifact": 6, "food": 13}
MIN_LENGTH = 3


def _noun_files(folder: Path) -> dict[str, tuple[int, set[str]]]:
    """Synset offset -> (its lexicographer file number, its words as the synset spells them), from
    data lines `offset lex_filenum ss_type w_cnt word lex_id ...` (wndb(5); w_cnt in hexadecimal)."""
    out = {}
    with (folder / "data.noun").open(encoding="utf-8") as lines:
        for line in lines:
            if not line.startswith("  "):
                fields = line.split(maxsplit=4 + 2 * 255)
                n_words = int(fields[3], 16)
                out[fields[0]] = (int(fields[1]), set(fields[4 : 4 + 2 * n_words : 2]))
    return out


def categorized_words(folder: Path | None = None) -> dict[str, str]:
    """word -> its class, for nouns whose every sense lies in one class's file (sorted by word)."""
    folder = folder or wordnet_dir()
    files = _noun_files(folder)
    by_file = {number: name for name, number in CATEGORIES.items()}
    out = {}
    with (folder / "index.noun").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):
                continue
            fields = line.split()
            word, n_senses, n_pointers = fields[0], int(fields[2]), int(fields[3])
            offsets = fields[6 + n_pointers : 6 + n_pointers + n_senses]
            kinds = {by_file.get(files[o][0]) for o in offsets}
            # The index lowercases every lemma; a synset spelling it otherwise ("Sperry") makes it a name.
            named = any(word not in files[o][1] for o in offsets)
            if len(kinds) == 1 and None not in kinds and not named and _keeps(word):
                out[word] = kinds.pop()
    return dict(sorted(out.items()))


def _keeps(word: str) -> bool:
    return word.isascii() and word.isalpha() and word.islower() and len(word) >= MIN_LENGTH and word not in BLOCKLIST


def _split(words: list[str], category: dict[str, str], rng: np.random.Generator) -> Split:
    classes = list(CATEGORIES)
    order = rng.permutation(len(words))
    return Split.from_records(
        [(TEMPLATE.format(word=words[i]), classes.index(category[words[i]])) for i in order], n_classes=len(classes)
    )


def word_categories_task(n_test: int = 1000) -> Task:
    """'The word "X".': which of five kinds of thing a WordNet noun names."""
    if n_test <= 0:
        raise ValueError(f"n_test must be positive, not {n_test}")
    rng = np.random.default_rng(_GENERATION_SEED)
    category = categorized_words()
    pool_words, test_words = split_families({word: word for word in category}, n_test, rng)
    return Task(
        name="word_categories",
        pool=_split(pool_words, category, rng),
        test=_split(test_words, category, rng),
        description="What kind of thing does the word name: animal, plant, person, artifact or food? (WordNet 3.0)",
        meta={"source": "wordnet", "version": TASK_VERSIONS["word_categories"]},
        classes=tuple(CATEGORIES),
    )
