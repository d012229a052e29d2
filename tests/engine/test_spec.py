"""TrialSpec.key(): the identity the service deduplicates trials on."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from worker.engine.precision import Precision, default_precision
from worker.engine.spec import (
    BINARY_SAME_SINCE, ENGINE_VERSION, RECIPE_PARAMS, Method, MethodParams, Recipe, TrialSpec, carried_forward, recipe_params,
)

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
    "keep_stage_start": True,
    "min_val_labels": 10,
    "lr_schedule": "constant",
    "cold_start_examples": 512,
    "patience_examples": 256,
    "fixed_schedule_examples": 100,
    "max_restarts": 1,
    # whichever this host does not default to
    "precision": Precision.fp32 if default_precision() == Precision.bf16 else Precision.bf16,
}

OTHER_FIELDS = {
    "task": "capitals",
    "model": "smollm2-135m",
    "method": Method.icl,
    "n_weak": 7,
    "n_gold": 3,
    "seed": 1,
    "weak_labeler": "bow:20",
    "recipe": Recipe.paper,
    "task_version": 7,
    "engine_version": ENGINE_VERSION - 1,
}


def base() -> TrialSpec:
    return TrialSpec(task="cities", n_weak=100, n_gold=10)


def test_key_is_pinned():
    # Stable across processes and releases: changing it orphans every stored trial. (Precision is
    # spelled out: by default it is this host's.)
    # The engine version is in it: each version bump re-pins it (version 5 gave ac9c9008be6f11c2dca503e8b41387da).
    assert TrialSpec(task="cities", params={"precision": "fp32"}).key() == "d74dc2ae3d252eb690bf4b99ad8301ad"
    assert TrialSpec(task="cities", params={"precision": "fp32"}, engine_version=5).key() == "ac9c9008be6f11c2dca503e8b41387da"
    assert TrialSpec(task="cities", params={"precision": "fp32"}, engine_version=4).key() == "714e84750ecc2fcdede8e95b260cf05a"


def test_only_a_two_class_trial_of_an_engine_that_trained_it_alike_is_carried_forward(monkeypatch):
    from worker.engine import spec as spec_module

    # Version 6 draws other labels for nearly every trial: nothing older is carried.
    assert BINARY_SAME_SINCE == ENGINE_VERSION == 6
    previous = TrialSpec(task="cities", n_gold=64, params={"precision": "fp32"}, engine_version=ENGINE_VERSION - 1)
    assert carried_forward(previous, {"spec": previous.model_dump(mode="json")}, n_classes=2) is None
    # The rule itself, for the next version that trains two-class trials alike: as if 5 trained them as 6.
    monkeypatch.setattr(spec_module, "BINARY_SAME_SINCE", ENGINE_VERSION - 1)
    result = {"test_accuracy": 0.8, "spec": previous.model_dump(mode="json"), "key": previous.key()}
    spec, restated = carried_forward(previous, result, n_classes=2)
    assert spec == TrialSpec(task="cities", n_gold=64, params={"precision": "fp32"}) and spec.engine_version == ENGINE_VERSION
    assert restated == {"test_accuracy": 0.8, "spec": spec.model_dump(mode="json"), "key": spec.key()}
    assert spec.key() != previous.key()
    assert carried_forward(previous, result, n_classes=5) is None  # K-class trials are never carried
    assert carried_forward(spec, restated, n_classes=2) is None  # already this engine's
    older = TrialSpec(task="cities", n_gold=64, engine_version=ENGINE_VERSION - 2)
    assert carried_forward(older, {}, n_classes=2) is None  # before the first version that trained alike


def test_key_shape():
    assert re.fullmatch(r"[0-9a-f]{32}", base().key())


def test_equal_specs_have_equal_keys():
    assert base().key() == base().key()
    explicit = TrialSpec(
        task="cities", model="minilm-l6", method="seq_sft", n_weak=100, n_gold=10, seed=0,
        weak_labeler="default", recipe="fast", params=MethodParams(lr=1e-3, patience=4),
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


def test_params_are_the_recipe_under_the_overrides():
    assert TrialSpec(task="t", recipe="paper").params == MethodParams()  # the paper's are the defaults
    fast = TrialSpec(task="t").params
    assert fast == recipe_params("fast") and fast.lr == RECIPE_PARAMS[Recipe.fast]["lr"]
    assert fast.keep_stage_start and fast.min_val_labels > 0
    tweaked = TrialSpec(task="t", params={"patience": 9})
    assert tweaked.params == fast.model_copy(update={"patience": 9})
    assert TrialSpec(task="t", params=MethodParams(patience=9)) == tweaked  # only fields set count
    # A spec read back from storage (every param spelled out) keeps exactly what it had.
    stored = TrialSpec(**tweaked.model_dump(mode="json"))
    assert stored == tweaked and stored.key() == tweaked.key()


def test_task_version_is_filled_from_the_registry():
    assert TrialSpec(task="cities").task_version == 2  # rebuilt without its shortcuts
    assert TrialSpec(task="my-upload").task_version == 1
    assert TrialSpec(task="cities", task_version=1).key() != TrialSpec(task="cities").key()


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
