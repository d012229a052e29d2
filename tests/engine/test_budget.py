"""Budget accounting: every bought label (train, validation, shots) is counted, bad allocations refused."""

from __future__ import annotations

import itertools

import pytest

from worker.engine.budget import (
    MIN_STAGE_LABELS,
    AllocationError,
    LabelPlan,
    StagePlan,
    min_labels,
    plan_labels,
    stage_split,
)
from worker.engine.spec import Method, MethodParams, TrialSpec

SWEEP = range(0, 13)


def spec(method: Method, n_weak: int, n_gold: int, recipe: str = "fast", **params) -> TrialSpec:
    return TrialSpec(task="t", method=method, n_weak=n_weak, n_gold=n_gold, recipe=recipe, params=params)


def causal_for(method: Method) -> bool | None:
    return True if method == Method.icl else None


# --------------------------------------------------------------------------- stage_split


@pytest.mark.parametrize(
    "n, expected",
    [(0, (0, 0)), (3, (1, 2)), (4, (2, 2)), (10, (8, 2)), (14, (12, 2)), (15, (12, 3)),
     (16, (13, 3)), (100, (80, 20)), (257, (206, 51)), (1025, (820, 205)), (4097, (3278, 819))],
)
def test_stage_split_pinned(n, expected):
    plan = stage_split(n)
    assert (plan.n_train, plan.n_val) == expected


def test_small_stages_train_on_every_label_under_a_small_stage_rule():
    fast = MethodParams(min_val_labels=20)  # (the fast recipe's is 50; the rule is the same)
    for n in range(1, 3000):
        plan = stage_split(n, fast)
        assert plan.total == n
        if n < 100:  # a fifth of n is under 20 labels: too few to validate on, all train
            assert plan == StagePlan(n, 0)
        else:
            assert plan == stage_split(n)
    assert stage_split(99, fast) == StagePlan(99, 0) and stage_split(100, fast) == StagePlan(80, 20)


def test_stage_split_holds_out_a_fifth_but_at_least_two():
    for n in range(1, 3000):
        plan = stage_split(n)
        assert plan.n_val == max(int(0.2 * n), 2) == max(n // 5, 2)
        assert plan.total == n
        if n >= MIN_STAGE_LABELS:
            assert plan.n_train >= 1


# --------------------------------------------------------------------------- exact accounting


def is_stage_size(n: int) -> bool:
    return n == 0 or n >= MIN_STAGE_LABELS


def expected_ok(method: Method, w: int, g: int, k: int, max_shots: int) -> bool:
    """An independent statement of which allocations each method can run."""
    if method == Method.icl:
        return 1 <= w + g <= max_shots
    if method == Method.prompted_sft:
        if w > 0:
            return w >= k and is_stage_size(w - k) and is_stage_size(g) and (w - k) + g > 0
        return g >= k and is_stage_size(g - k) and g - k > 0
    if not (is_stage_size(w) and is_stage_size(g)) or w + g == 0:
        return False
    if method == Method.logconf_sft:
        return w > 0
    if method == Method.uncertainty_sft:
        return w > 0 and g > 0
    return True


def check_stage(stage: StagePlan, params: MethodParams) -> None:
    if stage.total:
        assert stage.total >= MIN_STAGE_LABELS and stage.n_train >= 1
        assert stage == stage_split(stage.total, params)
    else:
        assert stage == StagePlan(0, 0)


@pytest.mark.parametrize("recipe", ["paper", "fast"])
@pytest.mark.parametrize("method", list(Method))
@pytest.mark.parametrize("n_shots, icl_max_shots", [(1, 5), (2, 8), (3, 64)])
def test_every_allocation_is_refused_or_counted_exactly(method, n_shots, icl_max_shots, recipe):
    accepted = 0
    for w, g in itertools.product(SWEEP, SWEEP):
        s = spec(method, w, g, recipe, n_shots=n_shots, icl_max_shots=icl_max_shots)
        ok = expected_ok(method, w, g, n_shots, icl_max_shots)
        if not ok:
            with pytest.raises(AllocationError):
                plan_labels(s, model_is_causal=causal_for(method))
            continue
        plan = plan_labels(s, model_is_causal=causal_for(method))
        accepted += 1
        assert isinstance(plan, LabelPlan)
        assert (plan.n_weak, plan.n_gold) == (w, g), f"{method} ({w}, {g}) spends {plan.as_dict()}"
        assert sum(plan.as_dict().values()) == w + g
        check_stage(plan.weak_stage, s.params)
        check_stage(plan.gold_stage, s.params)
        if method == Method.icl:
            assert (plan.weak_shots, plan.gold_shots) == (w, g)
            assert plan.weak_stage.total == plan.gold_stage.total == 0
        elif method == Method.prompted_sft:
            # The shots are weak when weak labels are bought, else gold; always n_shots of them.
            assert plan.weak_shots + plan.gold_shots == n_shots
            assert (plan.weak_shots > 0) == (w > 0)
        else:
            assert plan.weak_shots == plan.gold_shots == 0
            assert (plan.weak_stage.total, plan.gold_stage.total) == (w, g)
    assert accepted > 0


def test_as_dict_names_every_destination():
    plan = plan_labels(spec(Method.prompted_sft, 22, 10, recipe="paper"))
    assert plan.as_dict() == {
        "weak_shots": 2,
        "weak_train": 16,
        "weak_val": 4,
        "gold_shots": 0,
        "gold_train": 8,
        "gold_val": 2,
    }


def test_seq_sft_stage_with_zero_labels_is_skipped():
    plan = plan_labels(spec(Method.seq_sft, 0, 50, recipe="paper"))
    assert plan.weak_stage == StagePlan(0, 0)
    assert plan.gold_stage == StagePlan(40, 10)
    plan = plan_labels(spec(Method.seq_sft, 50, 0, recipe="paper"))
    assert plan.weak_stage == StagePlan(40, 10) and plan.gold_stage == StagePlan(0, 0)


def test_prompted_sft_without_weak_labels_takes_gold_shots():
    plan = plan_labels(spec(Method.prompted_sft, 0, 12, recipe="paper", n_shots=2))
    assert (plan.weak_shots, plan.gold_shots) == (0, 2)
    assert plan.gold_stage == StagePlan(8, 2)
    # The fast recipe trains a stage this small on every label, with no validation share.
    plan = plan_labels(spec(Method.prompted_sft, 0, 12, recipe="fast", n_shots=2))
    assert plan.gold_stage == StagePlan(10, 0)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "method, n_weak, n_gold, model_is_causal, params, must_mention",
    [
        (Method.seq_sft, 0, 1, None, {}, ["n_gold=1", "at least 3"]),
        (Method.seq_sft, 0, 2, None, {}, ["n_gold=2"]),
        (Method.seq_sft, 10, 2, None, {}, ["n_gold=2"]),
        (Method.seq_sft, 2, 10, None, {}, ["n_weak=2"]),
        (Method.seq_sft, 0, 0, None, {}, ["n_weak", "n_gold", "0"]),
        (Method.logconf_sft, 0, 0, None, {}, ["n_weak=0", "logconf_sft"]),
        (Method.logconf_sft, 0, 10, None, {}, ["n_weak=0", "logconf_sft"]),
        (Method.uncertainty_sft, 0, 10, None, {}, ["n_weak=0", "uncertainty_sft"]),
        (Method.uncertainty_sft, 10, 0, None, {}, ["n_gold=0", "uncertainty_sft"]),
        (Method.icl, 4, 4, False, {}, ["model='minilm-l6'", "encoder", "icl"]),
        (Method.icl, 0, 0, True, {}, ["n_weak + n_gold", "at least 1"]),
        (Method.icl, 40, 30, True, {}, ["70", "icl_max_shots=64"]),
        (Method.icl, 5, 4, None, {"icl_max_shots": 8}, ["9", "icl_max_shots=8"]),
        (Method.prompted_sft, 1, 10, None, {}, ["n_weak=1", "2", "shots"]),
        (Method.prompted_sft, 2, 10, None, {"n_shots": 3}, ["n_weak=2", "3", "shots"]),
        (Method.prompted_sft, 4, 10, None, {}, ["n_weak=2", "after 2 shots"]),
        (Method.prompted_sft, 0, 1, None, {}, ["n_gold=1", "shots"]),
        (Method.prompted_sft, 0, 4, None, {}, ["n_gold=2", "after 2 shots"]),
        (Method.prompted_sft, 0, 2, None, {}, ["nothing left"]),
        (Method.prompted_sft, 2, 0, None, {}, ["nothing left"]),
        (Method.prompted_sft, 10, 1, None, {}, ["n_gold=1"]),
    ],
)
def test_refusals_name_the_field(method, n_weak, n_gold, model_is_causal, params, must_mention):
    with pytest.raises(AllocationError) as err:
        plan_labels(spec(method, n_weak, n_gold, **params), model_is_causal=model_is_causal)
    message = str(err.value)
    for piece in must_mention:
        assert piece in message, f"{piece!r} missing from {message!r}"
    assert isinstance(err.value, ValueError)


def test_icl_refuses_an_encoder_but_not_an_unknown_model():
    s = spec(Method.icl, 3, 3)
    plan_labels(s, model_is_causal=True)
    plan_labels(s, model_is_causal=None)  # not known yet: the trial checks again once it resolves the model
    with pytest.raises(AllocationError):
        plan_labels(s, model_is_causal=False)


def test_training_methods_run_on_an_encoder():
    for method in (Method.seq_sft, Method.prompted_sft, Method.logconf_sft, Method.uncertainty_sft):
        plan = plan_labels(spec(method, 20, 20), model_is_causal=False)
        assert (plan.n_weak, plan.n_gold) == (20, 20)


def test_icl_exactly_at_max_shots_is_accepted():
    plan = plan_labels(spec(Method.icl, 40, 24), model_is_causal=True)
    assert (plan.weak_shots, plan.gold_shots) == (40, 24)


# --------------------------------------------------------------------------- min_labels


@pytest.mark.parametrize("method", list(Method))
@pytest.mark.parametrize("n_shots", [1, 2, 3, 5])
def test_min_labels_is_the_fewest_labels_plan_accepts(method, n_shots):
    def accepted(w: int, g: int) -> bool:
        try:
            plan_labels(spec(method, w, g, n_shots=n_shots), model_is_causal=causal_for(method))
        except AllocationError:
            return False
        return True

    totals = [w + g for w, g in itertools.product(range(0, 15), repeat=2) if accepted(w, g)]
    assert min(totals) == min_labels(method, n_shots=n_shots)


def test_min_labels_pinned():
    assert min_labels(Method.seq_sft) == 3
    assert min_labels(Method.logconf_sft) == 3
    assert min_labels(Method.uncertainty_sft) == 6
    assert min_labels(Method.icl) == 1
    assert min_labels(Method.prompted_sft) == 5
    assert min_labels(Method.prompted_sft, n_shots=4) == 7
