"""scripts/gpu-bench.sh and the benchmarks it runs: the script end to end on the CPU, and their pure parts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from test_resident_and_reuse import outcome
from bench.engine.allocation import (
    accuracy_gap,
    answers_agree,
    best_mean,
    same_point,
    service_recommendation,
    skipped_seconds,
)
from bench.engine.mfu import non_embedding_params, peak_flops, train_flops_per_token
from worker.engine.precision import cpu_supports_bf16

REPO = Path(__file__).resolve().parents[2]
# A cache kept between runs, so the dry run's weak labels build once; CI names its own for the run.
CACHE_DIR = os.environ.get("LABELMIX_CACHE_DIR") or "/root/.cache/labelmix-test"


def test_minilm_flops_count_its_transformer_blocks_only():
    from transformers import AutoConfig, AutoModel

    from worker.engine.models import resolve_model

    config = AutoConfig.from_pretrained(resolve_model("minilm-l6").path)
    hidden, ffn = config.hidden_size, config.intermediate_size
    # Per block: q, k, v, o (with biases), the two MLP projections, two LayerNorms.
    block = 4 * (hidden * hidden + hidden) + 2 * hidden * ffn + ffn + hidden + 2 * 2 * hidden
    n = non_embedding_params(AutoModel.from_config(config))  # random weights: only the shapes matter
    assert n == config.num_hidden_layers * block == 10_646_784
    assert train_flops_per_token(n) == 4 * n  # forward 2N, backward through activations 2N


def test_peak_table_matches_the_most_specific_name():
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA H100 80GB HBM3") == peak_flops("NVIDIA H200") == 989.5e12
    assert peak_flops("NVIDIA L40S") == 362e12 and peak_flops("NVIDIA L4") == 121e12
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("Quadro P1000") is None


def _trial(key, method, n_weak, n_gold, seed, acc, correct=None):
    return {"key": key, "method": method, "n_weak": n_weak, "n_gold": n_gold, "seed": seed,
            "test_accuracy": acc, "selection_accuracy": acc, "holdout_accuracy": acc, "n_test": 8,
            "test_correct": correct}


def test_best_mean_averages_seeds_and_breaks_ties_on_cost():
    trials = [
        _trial("a", "seq_sft", 0, 100, 0, 0.9), _trial("b", "seq_sft", 0, 100, 1, 0.6),  # mean 0.75
        _trial("c", "seq_sft", 500, 50, 0, 0.8), _trial("d", "seq_sft", 500, 50, 1, 0.8),  # 0.8, cost 100
        _trial("e", "logconf_sft", 1000, 0, 0, 0.8), _trial("f", "logconf_sft", 1000, 0, 1, 0.8),  # 100 too
    ]
    best = best_mean(trials, weak_cost=0.1, gold_cost=1.0)
    assert (best["method"], best["n_weak"], best["n_gold"]) == ("seq_sft", 500, 50)  # first of an exact tie
    assert best_mean(trials[4:] + trials[:4], 0.05, 1.0)["method"] == "logconf_sft"  # cheaper: 50 vs 75


def test_agreement_and_accuracy_gap():
    assert same_point({"method": "seq_sft", "n_weak": 0, "n_gold": 5},
                      {"method": "seq_sft", "n_weak": 0, "n_gold": 5, "accuracy": 0.1})
    assert not same_point({"method": "seq_sft", "n_weak": 0, "n_gold": 5},
                          {"method": "icl", "n_weak": 0, "n_gold": 5})
    assert same_point(None, {"method": "icl", "n_weak": 0, "n_gold": 5}) is None
    # Two arms whose services each call seq_sft and uncertainty_sft a tie, in either order: one answer.
    seq, unc, gold = ({"method": m, "n_weak": w, "n_gold": g} for m, w, g in
                      (("seq_sft", 1280, 128), ("uncertainty_sft", 1280, 128), ("seq_sft", 0, 256)))
    cold_rec = {**seq, "best": seq, "ties": [unc]}
    warm_rec = {**unc, "best": unc, "ties": [seq, gold]}
    assert answers_agree(cold_rec, warm_rec) and answers_agree(warm_rec, cold_rec)
    assert not answers_agree({**seq, "best": seq, "ties": []}, warm_rec)  # cold told them apart
    assert not answers_agree({**gold, "best": gold, "ties": []}, warm_rec)  # in warm's ties, but cold saw no tie
    assert answers_agree(None, warm_rec) is None
    cold = [_trial("a", "seq_sft", 0, 5, 0, 0.5), _trial("b", "seq_sft", 0, 5, 1, 0.75)]
    assert accuracy_gap(cold, cold) == (0.0, True)
    warm = [_trial("a", "seq_sft", 0, 5, 0, 0.5), _trial("b", "seq_sft", 0, 5, 1, 0.625)]
    assert accuracy_gap(cold, warm) == (0.125, False)
    assert accuracy_gap(cold, warm[:1]) == (0.0, False)  # a trial missing from one arm is not "identical"


def test_skipped_work_is_timed_on_the_cold_twin():
    def timed(key, reused=False, pool_reused=False, weak_s=10.0, pool_s=None):
        # A twin is the same point and seed (the arms' keys differ when their precisions do): one seed per key here.
        return {**_trial(key, "uncertainty_sft", 100, 10, "abcd".index(key), 0.5), "reused": reused,
                "pool_scores_reused": pool_reused, "stage_s": {"weak": weak_s, "gold": 3.0}, "pool_scoring_s": pool_s}

    cold = [timed("a", pool_s=40.0), timed("b", weak_s=7.0, pool_s=30.0), timed("c", weak_s=5.0)]
    # a: nothing skipped; b: its weak stage and pool scores (0.1 s to read them, the cold twin took 30);
    # c: its weak stage only; d has no cold twin, so nothing it skipped can be timed.
    warm = [timed("a", pool_s=41.0), timed("b", True, True, weak_s=0.2, pool_s=0.1), timed("c", True, weak_s=0.1),
            timed("d", True, True)]
    assert skipped_seconds(cold, warm) == 7.0 + 30.0 + 5.0
    assert skipped_seconds(cold, cold) == 0.0
    in_fp32 = [{**t, "key": t["key"] + "-fp32"} for t in cold]  # other keys, the same points and seeds
    assert skipped_seconds(in_fp32, warm) == 7.0 + 30.0 + 5.0


def test_service_chooser_runs_on_in_memory_trials():
    from worker.engine.metrics import pack_correct
    from worker.engine.spec import TrialSpec

    rows, specs = [], {}
    for n_weak, n_gold, hits in ((0, 50, [1, 1, 1, 1, 1, 1, 0, 0]), (500, 0, [1, 1, 1, 1, 0, 0, 0, 0])):
        for seed in (0, 1):
            spec = TrialSpec(task="cities", n_weak=n_weak, n_gold=n_gold, seed=seed, weak_labeler="bow:300")
            specs[spec.key()] = spec.model_dump(mode="json")
            correct = pack_correct(np.array(hits, dtype=bool))
            rows.append(_trial(spec.key(), "seq_sft", n_weak, n_gold, seed, sum(hits) / 8, correct))
    chosen = service_recommendation(rows, specs, {"budget": 50, "weak_cost": 0.1, "gold_cost": 1.0}, 0.5, 0.7)
    assert chosen["best"]["n_gold"] == 50 and chosen["best"]["accuracy"] == 0.75
    # The all-weak point is 0.25 worse on every seed: far outside the margin, so the best is chosen.
    assert (chosen["method"], chosen["n_weak"], chosen["n_gold"]) == ("seq_sft", 0, 50)


# Three benchmarks at toy sizes, each with its own processes and model loads: minutes on 2 busy cores.
@pytest.mark.slow
def test_gpu_bench_dry_run_writes_every_benchmarks_json(tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "OUT": str(out), "LABELMIX_CACHE_DIR": CACHE_DIR}
    done = subprocess.run(["bash", "scripts/gpu-bench.sh", "--dry-run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=2400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    expected = {
        "compare": {"engine", "trainer", "ratio", "n_train", "device"},
        "allocation": {"cold", "warm", "speedup", "best_mean_agree", "recommendation_agree",
                       "max_test_accuracy_diff", "test_accuracy_identical", "points", "trials"},
        "mfu": {"runs", "n_base_params", "flops_per_token", "peak_flops", "device"},
    }
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in expected}
    for name, keys in expected.items():
        assert keys <= results[name].keys(), name
        assert f"== {name}" in (out / f"{name}.log").read_text()

    allocation = results["allocation"]
    assert allocation["cold"]["device"] == "cpu" and len(allocation["trials"]) == 2
    for arm in ("cold", "warm"):
        assert allocation[arm]["n_trials"] == 2 and allocation[arm]["trials_per_hour"] > 0
        keys = {"trials_per_hour", "wall_s", "reused_weak_stage", "best_mean", "recommendation"}
        assert keys <= allocation[arm].keys()
    assert allocation["cold"]["settings"]["resident_models"] == 0  # the arms really ran under their settings
    (run,) = results["mfu"]["runs"]
    assert run["steps"] == 3 and run["tokens_per_s"] > 0
    # No data-sheet peak for a CPU: measured from one large product, and the step is a share of it.
    assert results["mfu"]["peak_source"].startswith("measured") and results["mfu"]["peak_flops"] > 0
    # The dry run asks for bf16 where the CPU multiplies it natively: the step ran under autocast and
    # the peak is a bf16 product's. Elsewhere it runs in fp32 (an emulated bf16 peak takes minutes).
    dtype = "bfloat16" if cpu_supports_bf16() else "float32"
    assert results["mfu"]["dtype"] == dtype and f"in {dtype}" in results["mfu"]["peak_source"]
    assert 0 < run["mfu"] == pytest.approx(run["achieved_tflops"] * 1e12 / results["mfu"]["peak_flops"])


def test_grid_reuse_counts_each_distinct_weak_stage_once(capsys):
    from bench.engine.grid_reuse import main, weak_stage_steps

    # seq_sft and uncertainty_sft at one n_weak train one weak stage; $16 and $32 grids repeat n_weak 80.
    main(budgets="16,32", shares=5, methods="seq_sft,uncertainty_sft", weak_cost=0.1, gold_cost=1.0,
         pool_size=30_000, recipe="fast")
    out = capsys.readouterr().out
    assert "distinct weak stages" in out and "x fewer" in out
    counts = [int(w) for w in out.split("\n")[0].replace(",", "").split() if w.isdigit()]
    points, with_weak, distinct = counts[:3]
    assert distinct < with_weak <= points
    # uncertainty_sft at n_weak 80 ($16 at share 1/2, $32 at 1/4) scores the pool once with the store.
    scorings = out.split("\n")[2]
    assert scorings.startswith("uncertainty_sft pool scorings")
    per_point, stored = [int(w) for w in scorings.replace(",", "").split() if w.isdigit()]
    assert stored < per_point
    assert weak_stage_steps("seq_sft", 80, 8, "fast") == weak_stage_steps("uncertainty_sft", 80, 16, "fast") > 0


# Two spawned worker processes, each importing torch and loading MiniLM: under a minute.
@pytest.mark.slow
def test_an_arm_of_two_processes_gives_the_results_of_one_and_keeps_shared_weak_stages_together(
        monkeypatch, tmp_path):
    from bench.engine.allocation import run_specs
    from worker.engine.settings import engine_settings
    from worker.engine.spec import TrialSpec

    small = dict(max_steps_per_stage=4, eval_every=2, n_test=32, max_length=32, min_val_labels=0,
                 uncertainty_candidates=64)
    specs = [TrialSpec(task="cities", method=m, n_weak=40, n_gold=g, weak_labeler="bow", params=small)
             for m, g in (("seq_sft", 20), ("logconf_sft", 20), ("uncertainty_sft", 16))]
    for name, value in {"LABELMIX_REUSE_WEAK_STAGES": "true", "LABELMIX_RESIDENT_MODELS": "1",
                        "LABELMIX_TORCH_THREADS": "1", "LABELMIX_CACHE_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)  # the spawned processes read them too
    built = Path(CACHE_DIR) / "weak_labels" / "cities"
    if built.is_dir():  # labels built before, copied as the benchmark does; an empty weak-stage store
        shutil.copytree(built, tmp_path / "weak_labels" / "cities")
    engine_settings.cache_clear()
    try:
        apart = run_specs(specs, processes=2)
        alone = [run_specs([s])[0] for s in specs]
    finally:
        engine_settings.cache_clear()
    for a, b in zip(apart, alone):
        assert outcome(a) == outcome(b)
    # uncertainty_sft ran after seq_sft in the same process and reused its weak stage.
    assert [s.reused for s in apart[2].stages] == [True, False]


def test_step_profile_splits_a_real_step_into_products_and_the_rest():
    from bench.engine.step_profile import PRODUCTS, profile_steps

    # bf16 where native: emulated, the peak's six 2048x2048 products alone took about 400 s.
    r = profile_steps("word_sentiment", "minilm-l6", "bf16" if cpu_supports_bf16() else "fp32", batch_size=4, steps=2)
    # A LoRA step on a transformer is mostly products, never only products (LayerNorm, softmax, AdamW).
    assert 0.2 < r["product_share"] < 1
    assert set(r["products"]) <= set(PRODUCTS) and {"aten::mm", "aten::addmm"} <= set(r["products"])
    assert r["product_tflops"] > 0 and r["peak_tflops"] > 0
    assert not {row["op"] for row in r["rest_top"]} & set(PRODUCTS)
    # Six layers of six LoRA-wrapped projections: at least one base product each, forward.
    assert r["products"]["aten::addmm"]["calls_per_step"] >= 36
