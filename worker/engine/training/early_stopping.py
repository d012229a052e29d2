"""Early stopping, kept free of torch so it can be tested on plain numbers.

The paper's rule counts evaluations: stop after `patience` of them without a gain of at least
`min_delta` validation AUROC. The `fast` recipe counts examples instead (`patience_examples`, at
least an epoch), so a stage's patience does not shrink when its evaluations come often (small stages
evaluate every epoch), and it cannot stop in its cold start (`not_before` examples): a stage that
starts from a random head sits at chance until it begins to learn (on word_sentiment, 700-2,200
examples), and the paper's rule, counting evaluations every 7 steps, stopped 250-gold stages there.
Nor does it stop at an evaluation that is the best so far: gains under `min_delta` do not reset
patience, but a stage whose latest score is its best is still improving (2,048 gold labels on
word_definitions, engine version 2: stopped at step 176 with its best at step 176), and a result
from a stage stopped while improving says little about its labels. On a plateau a new best comes
ever more rarely, so this adds an evaluation or two there; the stage's hard bound still holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class EarlyStopping:
    """Decide when a stage stops; remember its best evaluation.

    `best_score` is the highest score seen (the state to restore). Progress is measured against the
    last score that counted as a gain, so many tiny gains in a row still run out of patience.
    """

    patience: int = 4
    min_delta: float = 0.01
    patience_examples: int = 0  # > 0: patience in examples seen since the last gain, not evaluations
    not_before: int = 0  # no stop before this many examples: the cold start
    best_score: float = -math.inf
    best_step: int = -1
    _reference: float = field(default=-math.inf, repr=False)
    _evals_without_gain: int = field(default=0, repr=False)
    _examples: int = field(default=0, repr=False)  # at the latest evaluation
    _gain_examples: int = field(default=0, repr=False)  # at the latest gain
    _latest_is_best: bool = field(default=False, repr=False)

    def update(self, score: float | None, step: int, examples: int = 0) -> bool:
        """Record an evaluation after `examples` training examples; True when it is the best so far
        (the caller saves the state)."""
        value = -math.inf if score is None or math.isnan(score) else score
        self._examples = examples
        # An undefined score is never progress (else -inf >= -inf + min_delta would never run out).
        if value > -math.inf and value >= self._reference + self.min_delta:
            self._reference = value
            self._evals_without_gain = 0
            self._gain_examples = examples
        else:
            self._evals_without_gain += 1
        # The first evaluation always names a best state, even if its score is undefined.
        is_best = value > self.best_score or self.best_step < 0
        if is_best:
            self.best_score, self.best_step = value, step
        self._latest_is_best = is_best
        return is_best

    @property
    def in_cold_start(self) -> bool:
        return self._examples < self.not_before

    @property
    def should_stop(self) -> bool:
        if self.in_cold_start:
            return False
        if self.patience_examples > 0:
            return self._examples - self._gain_examples >= self.patience_examples and not self._latest_is_best
        return self._evals_without_gain >= self.patience
