"""The acceptance bar on a real task: 500 gold labels teach MiniLM the cities task, and the weak
labels are measurably worse than what that training reaches."""

from __future__ import annotations

import pytest

from worker.engine import TrialSpec, get_task, run_trial, weak_labels


@pytest.mark.slow
def test_seq_sft_on_500_gold_cities_beats_70_percent_and_the_weak_labels():
    result = run_trial(TrialSpec(task="cities", model="minilm-l6", method="seq_sft", n_weak=0, n_gold=500, seed=0))
    assert result.n_test == 1000
    assert result.test_accuracy >= 0.70, result.model_dump()
    weak = weak_labels(get_task("cities"))
    # "Measurably": the gap is larger than the test set's sampling error (about 1.3 points at n=1000).
    assert weak.accuracy <= result.test_accuracy - 0.03, (weak.accuracy, result.test_accuracy)
