"""Real trials, end to end, on the packaged models: few steps and short inputs keep them fast."""

from __future__ import annotations

import math

import pytest

from worker.engine import AllocationError, MethodParams, TrialSpec, run_trial

# Early stopping even on tiny stages (min_val_labels=0), so validation shows up in the results; the
# cheap bow labeler, since what these tests check does not depend on the weak labels' quality.
TINY = dict(max_steps_per_stage=4, eval_every=2, n_test=32, max_length=32, uncertainty_candidates=64, min_val_labels=0)


def tiny_spec(
    method: str, model: str = "minilm-l6", n_weak: int = 24, n_gold: int = 12, recipe: str = "fast", **params
) -> TrialSpec:
    return TrialSpec(
        task="cities",
        model=model,
        method=method,
        n_weak=n_weak,
        n_gold=n_gold,
        seed=0,
        weak_labeler="bow",
        recipe=recipe,
        params={**TINY, **params},
    )


def assert_sane(result, spec: TrialSpec) -> None:
    assert result.key == spec.key()
    assert result.n_test == 32
    assert 0.0 <= result.test_accuracy <= 1.0
    assert 0.0 <= result.test_auroc <= 1.0 and not math.isnan(result.test_auroc)
    used = result.labels_used
    assert used["weak_shots"] + used["weak_train"] + used["weak_val"] == spec.n_weak
    assert used["gold_shots"] + used["gold_train"] + used["gold_val"] == spec.n_gold
    assert result.device == "cpu"
    assert set(result.versions) == {"torch", "transformers", "peft"}


@pytest.mark.parametrize("method", ["seq_sft", "logconf_sft", "uncertainty_sft", "prompted_sft"])
def test_training_methods_run_end_to_end_on_minilm(method):
    spec = tiny_spec(method)
    events = []
    result = run_trial(spec, progress=events.append)
    assert_sane(result, spec)
    assert [s.name for s in result.stages] == ["weak", "gold"]
    weak, gold = result.stages
    assert weak.start_val_auroc is None  # a first stage starts from a random head: nothing to keep
    assert gold.start_val_auroc is not None  # the fast recipe weighs the weak stage's model first
    for stage in result.stages:
        assert stage.rule == "early_stopping"
        assert 1 <= stage.steps <= 4
        assert stage.examples <= stage.steps * 32
        assert stage.best_val_auroc is None or 0 <= stage.best_val_auroc <= 1
    assert result.weak_label_accuracy is not None
    # The callback saw every stage, and validation AUROC at the evaluation steps.
    assert {e.stage for e in events} == {"weak", "gold"}
    assert any(e.val_auroc is not None for e in events)


def test_results_report_what_the_params_cut_short():
    result = run_trial(tiny_spec("seq_sft", n_weak=200, n_gold=12, max_length=8))
    caps = "\n".join(result.caps)
    assert "weak stage: max_steps_per_stage=4 cut its schedule" in caps
    assert "labels were never seen" in caps  # 4 steps of 32 cannot reach 160 training labels
    assert "max_length=8 cut" in caps
    assert "n_test=32: scored on 32 of the task's 1000 test examples" in caps


def test_small_stages_train_a_fixed_schedule_on_every_label():
    # The fast recipe as it is: 40 weak and 12 gold labels are too few to validate on.
    spec = TrialSpec(task="cities", n_weak=40, n_gold=12, weak_labeler="bow",
                     params={"n_test": 64, "fixed_schedule_examples": 256})
    result = run_trial(spec)
    assert result.caps == ["n_test=64: scored on 64 of the task's 1000 test examples"]
    assert result.labels_used == {
        "weak_shots": 0, "weak_train": 40, "weak_val": 0, "gold_shots": 0, "gold_train": 12, "gold_val": 0
    }
    for stage, n in zip(result.stages, (40, 12)):
        assert stage.rule == "fixed_schedule" and stage.n_val == 0 and stage.best_val_auroc is None
        # The whole fixed schedule: 256 examples, every label many times.
        assert stage.steps == stage.best_step == math.ceil(256 / n * math.ceil(n / 32))
        assert stage.examples >= 256
    # The threshold sits at the pool's balance, so the test predictions are never all one class.
    assert 0.3 < result.predicted_positive_rate < 0.7


def test_gold_only_trial_skips_the_weak_stage():
    spec = tiny_spec("seq_sft", n_weak=0, n_gold=12)
    result = run_trial(spec)
    assert [s.name for s in result.stages] == ["gold"]
    assert result.stages[0].n_train + result.stages[0].n_val == 12
    assert result.weak_label_accuracy is None


def test_icl_runs_on_the_packaged_causal_lm():
    spec = tiny_spec("icl", model="smollm2-135m", n_weak=2, n_gold=2)
    result = run_trial(spec)
    assert_sane(result, spec)
    assert result.stages == []
    assert result.labels_used["gold_shots"] == 2 and result.labels_used["weak_shots"] == 2


def test_icl_refuses_an_encoder_before_loading_anything():
    with pytest.raises(AllocationError, match="encoder.*causal LM"):
        run_trial(tiny_spec("icl", model="minilm-l6", n_weak=0, n_gold=4))


def test_an_allocation_that_cannot_train_is_refused():
    with pytest.raises(AllocationError, match="n_gold=1 is too few"):
        run_trial(tiny_spec("seq_sft", n_weak=0, n_gold=1))


def test_same_spec_same_result_on_cpu():
    spec = tiny_spec("seq_sft")
    first, second = run_trial(spec), run_trial(spec)
    assert first.test_accuracy == second.test_accuracy
    assert first.test_auroc == second.test_auroc
    assert [s.best_val_auroc for s in first.stages] == [s.best_val_auroc for s in second.stages]


@pytest.mark.slow
def test_prompted_sft_on_the_packaged_causal_lm():
    spec = tiny_spec("prompted_sft", model="smollm2-135m", n_weak=8, n_gold=4, max_steps_per_stage=2)
    result = run_trial(spec)
    assert_sane(result, spec)
    assert result.labels_used["weak_shots"] == 2
