"""The paper's early-stopping rule, kept free of torch so it can be tested on plain numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class EarlyStopping:
    """Stop after `patience` evaluations without a gain of at least `min_delta`; remember the best.

    `best_score` is the highest score seen (the state to restore). Progress is measured against the
    last score that counted as a gain, so many tiny gains in a row still run out of patience.
    """

    patience: int = 4
    min_delta: float = 0.01
    best_score: float = -math.inf
    best_step: int = -1
    _reference: float = field(default=-math.inf, repr=False)
    _evals_without_gain: int = field(default=0, repr=False)

    def update(self, score: float | None, step: int) -> bool:
        """Record an evaluation; True when it is the best so far (the caller saves the state)."""
        value = -math.inf if score is None or math.isnan(score) else score
        # An undefined score is never progress (else -inf >= -inf + min_delta would never run out).
        if value > -math.inf and value >= self._reference + self.min_delta:
            self._reference = value
            self._evals_without_gain = 0
        else:
            self._evals_without_gain += 1
        # The first evaluation always names a best state, even if its score is undefined.
        is_best = value > self.best_score or self.best_step < 0
        if is_best:
            self.best_score, self.best_step = value, step
        return is_best

    @property
    def should_stop(self) -> bool:
        return self._evals_without_gain >= self.patience
