"""Savings that change no value: the frozen base's projections cast to bf16 once under a CPU's autocast
(training/frozen_cast.py) and peft's LoRA forward less its identities (training/lean_lora.py). A trial
must train bit for bit as without them, or the engine version would have to change."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from worker.engine import TrialSpec, run_trial
from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.resident import resident_models
from worker.engine.runtime import pick_runtime, seed_everything
from worker.engine.settings import engine_settings
from worker.engine.training import classifier as classifier_module
from worker.engine.training.classifier import build_classifier
from worker.engine.training.frozen_cast import _CastOnce, cast_frozen_projections, uncast_frozen_projections
from worker.engine.training.lean_lora import _LeanForward, peft_lora_forwards
from worker.engine.training.loop import Batcher

TEXTS = ["The city of Lyon is in France.", "Oslo is in Brazil.", "Ranam is in North Korea.", "Lima is in Peru."]


def _classifier(precision: str = "bf16"):
    model = resolve_model("minilm-l6")
    runtime = pick_runtime(precision)
    seed_everything(0)
    return build_classifier(model, runtime), Batcher(load_tokenizer(model), runtime, 32)


def test_a_bf16_classifier_casts_each_frozen_projection_once():
    classifier, _ = _classifier()
    layer = classifier.backbone.base_model.model.encoder.layer[0]
    query = layer.attention.self.query
    assert isinstance(query.base_layer.__dict__.get("forward"), _CastOnce)
    assert query.base_layer.forward.weight.dtype == torch.bfloat16
    assert not isinstance(query.lora_A["default"].__dict__.get("forward"), _CastOnce)  # trained: autocast caches it
    assert uncast_frozen_projections(classifier) == 6 * 6 + 1  # six projections a layer, and the (unused) pooler


def test_every_lora_layer_gets_the_lean_forward():
    classifier, _ = _classifier("fp32")
    query = classifier.backbone.base_model.model.encoder.layer[0].attention.self.query
    assert isinstance(query.__dict__.get("forward"), _LeanForward)
    assert peft_lora_forwards(classifier) == 6 * 6


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_logits_and_gradients_are_the_same_bits_as_without_the_savings(precision):
    arms = [_classifier(precision), _classifier(precision)]
    assert peft_lora_forwards(arms[1][0]) > 0
    assert (uncast_frozen_projections(arms[1][0]) > 0) == (precision == "bf16")
    with torch.no_grad():  # adapters that do something: B starts at zero
        for classifier, _ in arms:
            for name, weight in classifier.named_parameters():
                if "lora_B" in name:
                    weight.copy_(torch.linspace(-0.05, 0.05, weight.numel()).reshape(weight.shape))
    logits, grads = [], []
    for classifier, batcher in arms:
        out = classifier(**batcher(TEXTS))
        F.cross_entropy(out, torch.tensor([1, 0, 1, 0])).backward()
        logits.append(out.detach())
        grads.append([p.grad for p in classifier.trainable_parameters()])
    assert torch.equal(*logits)
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_merged_scoring_gives_the_lean_forward_back_afterwards():
    classifier, batcher = _classifier("fp32")
    with torch.no_grad():
        classifier(**batcher(TEXTS[:1]))
        with classifier.merged_adapter():
            classifier(**batcher(TEXTS[:1]))
    query = classifier.backbone.base_model.model.encoder.layer[0].attention.self.query
    assert isinstance(query.__dict__.get("forward"), _LeanForward)


def test_outside_a_bf16_autocast_a_cast_projection_computes_in_fp32():
    linear = nn.Linear(8, 4).requires_grad_(False)
    assert cast_frozen_projections(nn.Sequential(linear), torch.bfloat16) == 1
    x = torch.randn(3, 8)
    assert linear(x).dtype == torch.float32 and torch.equal(linear(x), F.linear(x, linear.weight, linear.bias))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert linear(x).dtype == torch.bfloat16
    assert cast_frozen_projections(nn.Sequential(linear), torch.bfloat16) == 1  # idempotent: the same copy kept


def test_a_bf16_trial_trains_bit_for_bit_as_without_the_savings(monkeypatch):
    spec = TrialSpec(task="cities", n_weak=24, n_gold=12, weak_labeler="bow",
                     params=dict(max_steps_per_stage=3, eval_every=2, n_test=32, max_length=32, min_val_labels=0,
                                 precision="bf16"))
    monkeypatch.setenv("LABELMIX_REUSE_WEAK_STAGES", "false")  # both arms train their weak stage
    engine_settings.cache_clear()

    def trial(saving: bool) -> dict:
        resident_models.clear()  # a resident base keeps its cast forwards: each arm loads its own
        with monkeypatch.context() as patch:
            if not saving:
                patch.setattr(classifier_module, "cast_frozen_projections", lambda *args: 0)
                patch.setattr(classifier_module, "lean_lora_forwards", lambda *args: 0)
            result = run_trial(spec)
        data = result.model_dump(exclude={"wall_s", "pool_scoring_s"})
        for stage in data["stages"]:
            stage.pop("wall_s")
        return data

    try:
        assert trial(saving=True) == trial(saving=False)
    finally:
        resident_models.clear()
        monkeypatch.undo()
        engine_settings.cache_clear()
