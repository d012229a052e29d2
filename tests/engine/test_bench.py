"""The engine-vs-Trainer benchmark runs end to end on a tiny trial."""

from __future__ import annotations

import pytest

from worker.bench.compare import compare


# Two model loads and a few steps each: seconds when idle, about a minute on a busy 2-core host.
@pytest.mark.slow
def test_compare_runs_both_harnesses_on_the_same_trial():
    # 40 gold labels: 32 to train on (one full batch per step), 8 to validate on.
    result = compare(n_gold=40, n_test=16, max_steps=2, max_length=16)

    assert result["n_train"] == 32 and result["n_test"] == 16
    engine, trainer = result["engine"], result["trainer"]
    for r in (engine, trainer):
        assert r["examples_per_s"] > 0
        assert 0 <= r["test_accuracy"] <= 1
        assert 1 <= r["steps"] <= 2
    per_step = {r["examples"] / r["steps"] for r in (engine, trainer)}
    assert per_step == {result["batch_size"]}
    assert result["ratio"] > 0
