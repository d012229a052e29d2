"""TrialSpec.key(): the identity the service deduplicates trials on."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from worker.engine.spec import Method, MethodParams, TrialSpec

# A different valid value for every method parameter. A new parameter must be added here, and
# since it changes every key (stored trials no longer match), the pinned key below will say so.
OTHER_PARAMS = {
    "lr": 1e-3,
    "batch_size": 16,
    "max_examples_per_stage": 1000,
    "max_steps_per_stage": 5,
    "warmup_steps": 10,
    "eval_every": 10,
    "patience": 2,
    "min_delta": 0.02,
    "max_length": 64,
    "eval_batch_size": 32,
    "n_shots": 3,
    "icl_max_shots": 32,
    "logconf_aux_weight": 0.25,
    "logconf_warmup_frac": 0.2,
    "uncertainty_candidates": 100,
    "n_test": 50,
}

OTHER_FIELDS = {
    "task": "capitals",
    "model": "smollm2-135m",
    "method": Method.icl,
    "n_weak": 7,
    "n_gold": 3,
    "seed": 1,
    "weak_labeler": "bow:20",
}


def base() -> TrialSpec:
    return TrialSpec(task="cities", n_weak=100, n_gold=10)


def test_key_is_pinned():
    # Stable across processes and releases: changing it orphans every stored trial.
    assert TrialSpec(task="cities").key() == "8a0bd8a46560bdbdb46938b5d0bf3244"


def test_key_shape():
    assert re.fullmatch(r"[0-9a-f]{32}", base().key())


def test_equal_specs_have_equal_keys():
    assert base().key() == base().key()
    explicit = TrialSpec(
        task="cities", model="minilm-l6", method="seq_sft", n_weak=100, n_gold=10, seed=0,
        weak_labeler="default", params=MethodParams(lr=5e-4, patience=4),
    )
    assert explicit == base()
    assert explicit.key() == base().key()  # defaults filled in: spelling them out changes nothing
    assert TrialSpec(task="cities", n_weak=100, n_gold=10, params={}).key() == base().key()


def test_every_field_and_param_changes_the_key():
    assert set(OTHER_FIELDS) == set(TrialSpec.model_fields) - {"params"}, "a new TrialSpec field: cover it"
    assert set(OTHER_PARAMS) == set(MethodParams.model_fields), "a new MethodParams field: cover it"
    keys = {"base": base().key()}
    for field, value in OTHER_FIELDS.items():
        keys[field] = base().model_copy(update={field: value}).key()
    for field, value in OTHER_PARAMS.items():
        assert getattr(MethodParams(), field) != value
        keys[f"params.{field}"] = base().model_copy(update={"params": MethodParams(**{field: value})}).key()
    assert len(set(keys.values())) == len(keys), "two different specs share a key"


def test_key_does_not_depend_on_param_order():
    a = TrialSpec(task="t", params=MethodParams(lr=1e-3, patience=2))
    b = TrialSpec(task="t", params=MethodParams(patience=2, lr=1e-3))
    assert a.key() == b.key()


def test_cost():
    spec = TrialSpec(task="t", n_weak=100, n_gold=10)
    assert spec.cost(weak_cost=0.1, gold_cost=1.0) == pytest.approx(20.0)
    assert spec.cost(weak_cost=0.0, gold_cost=2.5) == pytest.approx(25.0)


def test_specs_are_strict():
    with pytest.raises(ValidationError):
        TrialSpec(task="t", n_weak=-1)
    with pytest.raises(ValidationError):
        TrialSpec(task="t", bogus=1)
    with pytest.raises(ValidationError):
        MethodParams(patience=0)
    with pytest.raises(ValidationError):
        TrialSpec(task="t", method="nope")
    with pytest.raises(ValidationError):
        base().n_weak = 5  # frozen: a spec cannot drift away from its key
