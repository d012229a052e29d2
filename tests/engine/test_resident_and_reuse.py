"""A resident model, a reused weak stage and a grouped run each give the result of a cold, lone trial."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from worker.engine import weak_stages
from worker.engine.group import chunks_apart, run_group
from worker.engine.metrics import unpack_correct
from worker.engine.resident import resident_models
from worker.engine.settings import engine_settings
from worker.engine.spec import ENGINE_VERSION, TrialSpec
from worker.engine.trial import prepare_trial, run_trial

# Validated stages (min_val_labels 0, eval every 2 steps) so early stopping and restoring are exercised.
SMALL = dict(max_steps_per_stage=6, eval_every=2, n_test=48, max_length=32, min_val_labels=0, uncertainty_candidates=96)


def spec(method: str = "seq_sft", n_weak: int = 40, n_gold: int = 20, seed: int = 0, **params) -> TrialSpec:
    return TrialSpec(
        task="cities", method=method, n_weak=n_weak, n_gold=n_gold, seed=seed, weak_labeler="bow",
        params={**SMALL, **params},
    )


def outcome(result) -> dict:
    """Everything a trial reports except how long it took and whether it reused a stage."""
    data = result.model_dump(exclude={"wall_s", "pool_scores_reused", "pool_scoring_s"})
    for stage in data["stages"]:
        stage.pop("wall_s"), stage.pop("reused")
    return data


@pytest.fixture
def settings(monkeypatch, tmp_path):
    """Engine settings from the environment, re-read after each change; stores under tmp_path."""
    def apply(**env):
        for name, value in env.items():
            monkeypatch.setenv(f"LABELMIX_{name.upper()}", str(value))
        engine_settings.cache_clear()

    monkeypatch.setattr(weak_stages, "store_dir", lambda: tmp_path / "weak_stages")
    apply(reuse_weak_stages="false", resident_models=1)
    resident_models.clear()
    yield apply
    engine_settings.cache_clear()
    resident_models.clear()


def test_a_resident_workers_second_trial_equals_a_cold_one(settings):
    settings(resident_models=0)
    cold = run_trial(spec(seed=3))
    settings(resident_models=1)
    loads = resident_models.loads
    warm_first = run_trial(spec(method="logconf_sft", seed=5))  # leaves the base after training it
    warm = run_trial(spec(seed=3))
    assert resident_models.loads == loads + 1  # loaded once for both trials
    assert outcome(warm) == outcome(cold)
    assert outcome(warm_first) != outcome(warm)


def test_the_base_model_comes_back_without_adapters(settings):
    run_trial(spec())
    ((key, loaded),) = resident_models._entries.items()
    names = [name for name, _ in loaded.model.named_parameters()]
    assert names and not any("lora" in n for n in names)
    assert not loaded.in_use and not loaded.model.training


def test_a_reused_weak_stage_gives_the_identical_result_and_says_so(settings, tmp_path):
    settings(reuse_weak_stages="false")
    fresh = run_trial(spec(method="uncertainty_sft", n_gold=16))
    settings(reuse_weak_stages="true")
    first = run_trial(spec(method="seq_sft", n_gold=24))  # trains and stores the shared weak stage
    assert [s.reused for s in first.stages] == [False, False]
    assert len(list((tmp_path / "weak_stages").glob("*.pt"))) == 1
    reused = run_trial(spec(method="uncertainty_sft", n_gold=16))
    assert [s.reused for s in reused.stages] == [True, False]
    assert outcome(reused) == outcome(fresh)  # bit for bit: accuracy, per-example correctness, threshold


def test_reused_pool_scores_give_the_identical_result_and_say_so(settings, tmp_path):
    settings(reuse_weak_stages="false")
    fresh = run_trial(spec(method="uncertainty_sft", n_gold=20))
    other_candidates = run_trial(spec(method="uncertainty_sft", n_gold=20, uncertainty_candidates=80))
    assert not fresh.pool_scores_reused and fresh.pool_scoring_s > 0  # where its time went, beside the stages'
    # The pool scoring tokenized the gold examples first; their stage still reports them.
    assert fresh.stages[1].longest_input > 0
    settings(reuse_weak_stages="true")
    first = run_trial(spec(method="uncertainty_sft", n_gold=16))  # trains the stage, scores the pool
    assert not first.pool_scores_reused
    assert len(list((tmp_path / "weak_stages").glob("*.pool.npz"))) == 1
    reused = run_trial(spec(method="uncertainty_sft", n_gold=20))
    assert reused.pool_scores_reused and [s.reused for s in reused.stages] == [True, False]
    assert outcome(reused) == outcome(fresh)
    # Same stage, other candidates (uncertainty_candidates acts after the weak stage): scored again.
    rescored = run_trial(spec(method="uncertainty_sft", n_gold=20, uncertainty_candidates=80))
    assert [s.reused for s in rescored.stages] == [True, False] and not rescored.pool_scores_reused
    assert outcome(rescored) == outcome(other_candidates)


def test_unreadable_pool_scores_are_scored_again(settings, tmp_path):
    settings(reuse_weak_stages="true")
    first = run_trial(spec(method="uncertainty_sft", n_gold=16))
    (path,) = (tmp_path / "weak_stages").glob("*.pool.npz")
    path.write_bytes(b"torn")
    again = run_trial(spec(method="uncertainty_sft", n_gold=16))
    assert not again.pool_scores_reused and outcome(again) == outcome(first)
    assert run_trial(spec(method="uncertainty_sft", n_gold=16)).pool_scores_reused  # rewritten whole


def test_weak_stage_keys_follow_what_the_stage_depends_on(settings):
    def key(s: TrialSpec) -> str:
        return weak_stages.weak_stage_key(prepare_trial(s))

    base = key(spec())
    assert key(spec(n_gold=30)) == base  # gold comes after the weak stage
    assert key(spec(method="uncertainty_sft")) == base
    assert key(spec(n_test=32)) == base
    assert key(spec(seed=1)) != base
    assert key(spec(n_weak=44)) != base
    assert key(spec(method="logconf_sft")) != base  # its weak stage has another loss
    assert key(spec(lr=2e-3)) != base
    assert key(TrialSpec(**{**spec().model_dump(), "weak_labeler": "bow:200"})) != base  # other weak labels
    # Another engine trained it (version 3's bf16 stages ran SDPA attention): never reused by this one.
    assert key(TrialSpec(**{**spec().model_dump(), "engine_version": ENGINE_VERSION - 1})) != base


def test_the_spec_level_prefix_tells_the_same_stages_apart_as_the_key(settings):
    variants = [spec(), spec(n_gold=30), spec(method="uncertainty_sft"), spec(n_test=32), spec(seed=1),
                spec(n_weak=44), spec(method="logconf_sft"), spec(lr=2e-3),
                TrialSpec(**{**spec().model_dump(), "weak_labeler": "bow:200"}),
                TrialSpec(**{**spec().model_dump(), "engine_version": ENGINE_VERSION - 1})]
    keys = [weak_stages.weak_stage_key(prepare_trial(s)) for s in variants]
    prefixes = [weak_stages.weak_prefix(s) for s in variants]
    for i in range(len(variants)):
        for j in range(len(variants)):
            assert (keys[i] == keys[j]) == (prefixes[i] == prefixes[j]), (variants[i], variants[j])
    assert weak_stages.weak_prefix(spec(n_weak=0)) is None  # no weak stage to share


@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_trials_sharing_a_weak_stage_are_scheduled_after_the_one_that_trains_it(size):
    rng = np.random.default_rng(size)
    prefixes = [None if p == 0 else int(p) for p in rng.integers(0, 5, 40)]
    chunks = chunks_apart(list(range(40)), prefixes, size)
    assert sorted(i for c in chunks for i in c) == list(range(40))
    assert all(1 <= len(c) <= size for c in chunks)
    chunk_of = {i: n for n, c in enumerate(chunks) for i in c}
    for p in set(prefixes) - {None}:
        members = sorted(chunk_of[i] for i, q in enumerate(prefixes) if q == p)
        assert members.count(members[0]) == 1  # one trains it; the rest come in later chunks
    # Chunks stay full while the rules allow: only the last may be short when nothing is shared.
    plain = chunks_apart(list(range(10)), [None] * 10, 4)
    assert [len(c) for c in plain] == [4, 4, 2]


def test_the_store_prunes_least_recently_used_stages_and_pool_scores(tmp_path):
    for i, (name, size) in enumerate((("0.pt", 400), ("0.pool.npz", 100), ("1.pt", 300), ("2.pool.npz", 200))):
        path = tmp_path / name
        path.write_bytes(b"x" * size)
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "other.txt").write_bytes(b"x" * 1000)  # not the store's: neither counted nor deleted
    weak_stages.prune(tmp_path, 550)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.pt", "2.pool.npz", "other.txt"]


def test_an_unreadable_stored_stage_is_trained_again(settings, tmp_path):
    settings(reuse_weak_stages="true")
    s = spec(seed=7)
    path = tmp_path / "weak_stages" / f"{weak_stages.weak_stage_key(prepare_trial(s))}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    result = run_trial(s)
    assert [st.reused for st in result.stages] == [False, False]
    assert torch.load(path, weights_only=True)["stage"]  # overwritten with the real stage


def test_grouped_trials_match_the_same_trials_run_alone(settings):
    # In fp32: a group pads its rows to the longest of all members' and multiplies other shapes, which
    # moves bf16 results by their rounding (grouping is for GPUs; a CPU trains one trial at a time).
    fp32 = "fp32"
    specs = [
        spec(seed=0, precision=fp32),
        spec(method="logconf_sft", n_weak=48, seed=1, precision=fp32),
        spec(method="uncertainty_sft", n_gold=16, seed=2, precision=fp32),
        spec(method="prompted_sft", seed=3, precision=fp32),
        spec(n_weak=0, n_gold=40, seed=4, precision=fp32),  # no weak stage: joins the others' stages at once
    ]
    alone = [run_trial(s) for s in specs]
    together = run_group(specs)
    for a, g in zip(alone, together):
        assert [(s.name, s.steps, s.best_step) for s in a.stages] == [(s.name, s.steps, s.best_step) for s in g.stages]
        for sa, sg in zip(a.stages, g.stages):
            assert sg.best_val_auroc == pytest.approx(sa.best_val_auroc, abs=1e-4)
        assert g.threshold == pytest.approx(a.threshold, abs=1e-3)
        assert g.test_auroc == pytest.approx(a.test_auroc, abs=1e-4)
        agree = unpack_correct(a.test_correct, a.n_test) == unpack_correct(g.test_correct, g.n_test)
        assert agree.mean() >= 47 / 48  # a score within rounding of the threshold may fall either side


def test_a_group_leaves_the_resident_base_as_it_found_it(settings):
    run_group([spec(seed=0), spec(seed=1)])
    ((_, loaded),) = resident_models._entries.items()
    from torch import nn

    from worker.engine.training.multi_lora import MultiLoRALinear

    assert not any(isinstance(m, MultiLoRALinear) for m in loaded.model.modules())
    assert all(type(m) is nn.Linear for n, m in loaded.model.named_modules() if n.endswith("query"))
    assert np.isfinite(run_trial(spec(seed=0)).test_auroc)
