"""How far a task can be solved from surface cues alone: baselines that know nothing of the world.

Both are trained on the pool and scored on the test set; on a task without shortcuts both sit at
chance (0.5 on a balanced test set). Far below chance is a cue too: it means the pool teaches the
inverted answer (a mirror statement on the other side of the split).
"""

from __future__ import annotations

import re

import numpy as np

from .base import Split, Task

# The answer a statement names, per task: the part a false statement swaps out.
_ANSWER_PATTERNS = {
    "cities": re.compile(r" is in (.+)\.$"),
    "city_continents": re.compile(r" is in (.+)\.$"),
    "capitals": re.compile(r" is (.+)\.$"),
    "word_sentiment": re.compile(r'" is (positive|negative)\.$'),
    "word_definitions": re.compile(r'" can mean: (.+)\.$'),
}
_BOW_MAX_POOL = 10_000
_SEED = 0


def answer_of(task_name: str, text: str) -> str:
    """The statement's answer; for tasks without a known template, its last word."""
    pattern = _ANSWER_PATTERNS.get(task_name)
    match = pattern.search(text) if pattern else None
    if match:
        return match.group(1)
    words = text.split()
    return words[-1].strip(".,;:!?") if words else ""


def _answer_lookup(task: Task) -> float:
    """Predict, for each test statement, the majority pool label of statements with its answer."""
    pool_majority = int(task.pool.labels.mean() >= 0.5)
    counts: dict[str, list[int]] = {}
    for text, label in zip(task.pool.texts, task.pool.labels.tolist()):
        counts.setdefault(answer_of(task.name, text), [0, 0])[label] += 1
    predictions = []
    for text in task.test.texts:
        negatives, positives = counts.get(answer_of(task.name, text), (0, 0))
        predictions.append(pool_majority if positives == negatives else int(positives > negatives))
    return float(np.mean(np.array(predictions) == task.test.labels))


def _bow(task: Task) -> float:
    """Word 1-2-gram TF-IDF + logistic regression (the default weak labeler's recipe) on the pool."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train: Split = task.pool
    if len(train) > _BOW_MAX_POOL:  # a sample this size learns the same cues, in seconds
        sample = np.random.default_rng(_SEED).choice(len(train), _BOW_MAX_POOL, replace=False)
        train = train.take(np.sort(sample))
    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(vectorizer.fit_transform(train.texts), train.labels)
    return float(np.mean(model.predict(vectorizer.transform(task.test.texts)) == task.test.labels))


def cue_baselines(task: Task) -> dict[str, float]:
    """Test accuracy of the answer-lookup and bag-of-words baselines, both trained on the pool."""
    return {"answer_lookup": _answer_lookup(task), "bow": _bow(task)}
