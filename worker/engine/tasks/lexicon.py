"""The built-in `word_sentiment` task, generated deterministically from the VADER sentiment lexicon.

'The word "grim" is negative.': true when the polarity shown is the word's polarity in the lexicon
(package `vadersentiment`, MIT; each token rated by ten people from -4 to +4). Each word is used
once, and each polarity is shown in exactly as many true as false statements, so neither the word
(unseen at test time) nor the polarity shown tells the label: a model has to know what words mean.

The lexicon lists inflections as words of their own ("abandon", "abandoned", "abandoner"). Split
word by word, a test word would usually have a relative in the pool (81% shared their first five
letters with a pool word, and looking the polarity up by those five letters scored 0.87 on the
test set). So whole families (see `families`) go to one side of the split: no test word shares its
first five letters with a pool word. What is left to learn from spelling alone is morphology that
carries across families ("-less", "un-", "-ful") and relatives the families miss ("hate" and
"hating"): a character n-gram classifier of the word's polarity, trained on the pool, scores about
0.6 on the test set; a linear model over the statement, which cannot combine the word with the
polarity shown, is at chance.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable
from importlib.resources import files

import numpy as np

from .base import Split, Task

# Fixed so that every install builds the very same statements, pool and test set.
_GENERATION_SEED = 20240917

# Bumped whenever the statements or split change (see geo.TASK_VERSIONS).
TASK_VERSIONS = {"word_sentiment": 1}

TEMPLATE = 'The word "{word}" is {answer}.'
ANSWERS = ("negative", "positive")  # indexed by polarity: 0 negative, 1 positive

# A clear polarity (|mean rating| >= 1 of 4) that the raters agree on (std <= 1.5): for a word rated
# both ways ("challenged": mean -0.4, std 1.6) a statement's truth would be a matter of opinion.
MIN_ABS_MEAN = 1.0
MAX_STD = 1.5
MIN_LENGTH = 3
# The lexicon opens with emoticons and chat acronyms (":-)", "bff", "aayf"); its word list starts here.
_FIRST_WORD = "abandon"

# Words sharing their first FAMILY_PREFIX letters are one family (see `families`), kept on one side
# of the split.
FAMILY_PREFIX = 5

# Words the task leaves out so they never appear in a dashboard: the slurs (against a group of
# people, and the sexual insults) and the strong profanity among the lexicon's clear words, every
# form of each as listed there. Milder words stay in ("damn", "crap", "bastard", "jerk", "pissed",
# "dumbass").
# fmt: off
BLOCKLIST = frozenset(
    {
        # slurs
        "fag", "faggot", "faggots", "nigger", "retard", "retarded", "tard", "fucktard",
        "shylock", "shylocks", "shylocking",
        "bitch", "bitched", "bitcheries", "bitchery", "bitches", "bitchier", "bitchiest", "bitchily",
        "bitchiness", "bitchy",
        "slut", "sluts", "sluttier", "sluttiest", "sluttish", "sluttishly", "sluttishness",
        "sluttishnesses", "slutty",
        "whore", "whored", "whoredoms", "whoremaster", "whoremonger", "whores", "whoreson",
        "whoresons",
        "twat", "cunts",
        # strong profanity
        "fuck", "fucked", "fucker", "fuckers", "fuckface", "fuckhead", "fucks", "fuked", "fuking",
        "motherfucker", "motherfucking", "assfucking", "assholes", "cocksucker", "cocksuckers",
        "shit", "shits", "shitted", "shittier", "shittiest", "shitting", "shitty", "shithead",
        "shitheads", "bullshit", "dipshit", "dick", "dickhead", "wanker",
    }
)
# fmt: on


def lexicon_rows() -> list[tuple[str, float, float]]:
    """(token, mean rating, std of the ratings) for every line of the lexicon, in file order."""
    text = files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        if line.strip():
            token, mean, std, _ratings = line.split("\t")
            rows.append((token, float(mean), float(std)))
    return rows


def clear_words(rows: list[tuple[str, float, float]]) -> dict[str, int]:
    """Word -> polarity (1 positive, 0 negative) for the plain words of a clear, agreed polarity.

    Tokens listed twice ("sob" at -2.8 and -1.0) have no single rating and are left out, and so are
    the words of the BLOCKLIST.
    """
    listed = Counter(token for token, _, _ in rows)
    start = next(i for i, (token, _, _) in enumerate(rows) if token == _FIRST_WORD)
    return {
        token: int(mean > 0)
        for token, mean, std in rows[start:]
        if listed[token] == 1
        and token.isascii()
        and token.isalpha()
        and token.islower()
        and len(token) >= MIN_LENGTH
        and abs(mean) >= MIN_ABS_MEAN
        and std <= MAX_STD
        and token not in BLOCKLIST
    }


def families(words: Iterable[str]) -> dict[str, str]:
    """Word -> its family's key: words sharing their first FAMILY_PREFIX letters are one family
    ("abandoned", "abandoner": "aband"), and a shorter word joins the family of every word it begins
    ("fear" with "fears" and "fearing", which would otherwise be three families: "fear", "fears",
    "feari"). Families so joined take the first of their keys.
    """
    ordered = sorted(words)
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for word in ordered:
        root(word[:FAMILY_PREFIX])
    for short in ordered:
        if len(short) < FAMILY_PREFIX:
            # The words that begin with `short` sit together in sorted order, from `short` itself on.
            i = bisect_left(ordered, short)
            while i < len(ordered) and ordered[i].startswith(short):
                first, other = sorted((root(short), root(ordered[i][:FAMILY_PREFIX])))
                parent[other] = first
                i += 1
    return {word: root(word[:FAMILY_PREFIX]) for word in ordered}


def _split_families(
    polarity: dict[str, int], n_test: int, rng: np.random.Generator
) -> tuple[list[list[str]], list[list[str]]]:
    """(pool, test) words, each as [negative words, positive words]; whole families on each side.

    Families are drawn in random order into the test set while they fit, until it holds exactly
    n_test / 2 words of each polarity; every other family goes to the pool.
    """
    if n_test <= 0 or n_test % 2:
        raise ValueError(f"n_test must be a positive even number, not {n_test}")
    need = n_test // 2
    members: dict[str, list[str]] = defaultdict(list)
    for word, key in families(polarity).items():
        members[key].append(word)
    pool: list[list[str]] = [[], []]
    test: list[list[str]] = [[], []]
    for key in rng.permutation(sorted(members)).tolist():
        words = members[key]
        counts = [sum(polarity[w] == k for w in words) for k in (0, 1)]
        fits = all(len(test[k]) + counts[k] <= need for k in (0, 1))
        for word in words:
            (test if fits else pool)[polarity[word]].append(word)
    if any(len(test[k]) != need for k in (0, 1)):
        raise ValueError(f"not enough word families for a test set of {n_test}")
    return pool, test


def _statements(by_polarity: list[list[str]], rng: np.random.Generator) -> list[tuple[str, int]]:
    """One statement per word, half true, in random order, from [negative words, positive words].

    Shown "positive", a statement is true for a positive word and false for a negative one (and the
    other way round), so for each answer to be shown as often true as false there must be as many
    words of each polarity: the more common polarity is undersampled. Each statement showing an
    answer truly is paired with one showing it falsely, so each answer is exactly balanced, and the
    words of each polarity split in half between the two answers (for an odd count of words of each
    polarity, "negative" is shown in one pair more than "positive").
    """
    n = min(map(len, by_polarity))
    chosen = [rng.choice(sorted(words), n, replace=False).tolist() for words in by_polarity]
    shown = (n - n // 2, n // 2)  # statements showing "negative", "positive"
    records: list[tuple[str, int]] = []
    for k in (0, 1):
        # chosen[k][:shown[k]] are shown their own polarity k; chosen[1 - k][shown[1 - k]:] show k too.
        for true_word, false_word in zip(chosen[k][: shown[k]], chosen[1 - k][shown[1 - k] :], strict=True):
            records.append((TEMPLATE.format(word=true_word, answer=ANSWERS[k]), 1))
            records.append((TEMPLATE.format(word=false_word, answer=ANSWERS[k]), 0))
    return [records[i] for i in rng.permutation(len(records))]


def word_sentiment_task(n_test: int = 1000) -> Task:
    """'The word "X" is positive/negative.': one statement per clear word of the VADER lexicon."""
    rng = np.random.default_rng(_GENERATION_SEED)
    pool_words, test_words = _split_families(clear_words(lexicon_rows()), n_test, rng)
    return Task(
        name="word_sentiment",
        pool=Split.from_records(_statements(pool_words, rng)),
        test=Split.from_records(_statements(test_words, rng)),
        description="Is the word's sentiment as stated? (VADER lexicon)",
        meta={"source": "vadersentiment", "version": TASK_VERSIONS["word_sentiment"]},
    )
