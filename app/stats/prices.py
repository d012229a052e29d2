"""What labels cost: the one place a spend is computed from label counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """Dollars per weak label and per gold label. A trial is cost-agnostic; a point's cost exists
    only at some prices, so every cost and spend in the service is computed here."""

    weak: float
    gold: float

    def cost(self, n_weak, n_gold):
        """Dollars for these label counts (numbers, or numpy arrays of them)."""
        return n_weak * self.weak + n_gold * self.gold

    def spend(self, n_weak, n_gold) -> tuple[float, float]:
        """(dollars on weak labels, dollars on gold labels)."""
        return n_weak * self.weak, n_gold * self.gold
