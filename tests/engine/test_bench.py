"""The engine-vs-Trainer benchmark runs end to end on a tiny trial."""

from __future__ import annotations

import pytest

from bench.engine.compare import compare


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


def test_the_precision_bench_times_every_arm_on_the_same_batch():
    from bench.engine.precision import ARMS, measure

    report = measure("word_sentiment", "minilm-l6", tokens=32, rounds=1, steps=1)
    assert set(report["arms"]) == set(ARMS) and report["arms"]["fp32"]["speedup_vs_fp32"] == 1.0
    assert report["batch"][0] == 32 and 24 <= report["batch"][1] <= 48  # texts repeated to about 32 tokens
    assert all(arm["median_s_per_step"] > 0 for arm in report["arms"].values())
