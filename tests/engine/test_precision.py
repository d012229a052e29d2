"""Precision: detected from the CPU's flags, forced by LABELMIX_PRECISION or a trial's params, part of the
trial's key, and what actually runs: bf16 autocast around the base on a CPU, fp32 adapters, head and
gradients, and recorded in the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.engine import TrialSpec, run_trial
from worker.engine import precision as precision_module
from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.precision import Precision, cpu_flags, cpu_kind, default_precision, resolve_precision
from worker.engine.runtime import pick_runtime, seed_everything
from worker.engine.settings import engine_settings
from worker.engine.spec import MethodParams
from worker.engine.training.classifier import build_classifier
from worker.engine.training.loop import Batcher, predict_scores

EPYC = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n"
OLD_XEON = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"


@pytest.fixture
def setting(monkeypatch):
    """Set LABELMIX_PRECISION for the test (the settings are cached per process)."""

    def set_to(value: str) -> None:
        monkeypatch.setenv("LABELMIX_PRECISION", value)
        engine_settings.cache_clear()

    yield set_to
    monkeypatch.delenv("LABELMIX_PRECISION", raising=False)
    engine_settings.cache_clear()


def test_flags_are_read_from_cpuinfo():
    assert "avx512_bf16" in cpu_flags(EPYC) and "amx_bf16" in cpu_flags(SAPPHIRE)
    assert not precision_module.BF16_CPU_FLAGS & cpu_flags(OLD_XEON)
    assert "bf16" in cpu_flags(GRAVITON)  # ARM spells them "Features"
    assert cpu_flags("no flags here") == frozenset()


def test_a_cpu_kind_names_the_first_cpu_its_family_model_and_bf16_flags():
    zen5 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
            "flags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nmodel name\t: another CPU\n")
    assert cpu_kind(zen5) == "AMD EPYC, family 26 model 2, avx512_bf16"
    assert cpu_kind(OLD_XEON) == "unknown CPU, family ? model ?, no bf16"
    assert cpu_kind("") == "unknown CPU"


@pytest.mark.parametrize("cpuinfo, expected", [(EPYC, "bf16"), (SAPPHIRE, "bf16"), (OLD_XEON, "fp32")])
def test_auto_follows_the_cpu(monkeypatch, cpuinfo, expected):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda text=None: cpu_flags(cpuinfo))
    monkeypatch.setattr(precision_module, "gpu_visible", lambda: False)
    precision_module.cpu_supports_bf16.cache_clear()
    try:
        assert resolve_precision("auto") == expected
    finally:
        precision_module.cpu_supports_bf16.cache_clear()


def test_a_visible_gpu_means_bf16_unless_the_device_is_forced_to_the_cpu(monkeypatch):
    monkeypatch.setattr(precision_module, "gpu_visible", lambda: True)
    monkeypatch.setattr(precision_module, "cpu_supports_bf16", lambda: False)
    assert resolve_precision("auto") == "bf16"
    assert resolve_precision("auto", device="cpu") == "fp32"


def test_the_setting_forces_either(setting):
    for forced in ("fp32", "bf16"):
        setting(forced)
        assert default_precision() == forced
        assert MethodParams().precision == forced
        assert TrialSpec(task="cities").params.precision == forced


def test_this_machine_is_read_not_guessed(setting):
    setting("auto")
    has = bool(precision_module.BF16_CPU_FLAGS & cpu_flags()) or precision_module.gpu_visible()
    assert default_precision() == ("bf16" if has else "fp32")


def test_precision_is_part_of_the_key():
    fp32 = TrialSpec(task="cities", n_gold=64, params={"precision": "fp32"})
    bf16 = TrialSpec(task="cities", n_gold=64, params={"precision": "bf16"})
    assert fp32.key() != bf16.key()
    assert TrialSpec(**bf16.model_dump(mode="json")).key() == bf16.key()  # read back from storage: the same


def _classifier(precision: str):
    model = resolve_model("minilm-l6")
    runtime = pick_runtime(precision)
    seed_everything(0)
    return build_classifier(model, runtime), Batcher(load_tokenizer(model), runtime, 32), runtime


@pytest.mark.parametrize("precision, base_dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_the_base_computes_in_the_precision_while_adapters_head_and_gradients_stay_fp32(precision, base_dtype):
    classifier, batcher, runtime = _classifier(precision)
    assert runtime.precision == precision and runtime.device.type == "cpu"
    seen = []
    query = classifier.backbone.base_model.model.encoder.layer[0].attention.self.query
    hook = query.base_layer.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    try:
        logits = classifier(**batcher(["The city of Lyon is in France.", "Oslo is in Brazil."]))
    finally:
        hook.remove()
    assert seen == [base_dtype]
    assert logits.dtype == torch.float32  # the head reads the pooled states in fp32
    logits.sum().backward()
    trainable = classifier.trainable_parameters()
    assert trainable and all(p.dtype == torch.float32 for p in trainable)  # fp32 master weights
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in trainable)
    # The frozen base keeps its fp32 weights on the CPU: autocast, not a bf16 copy.
    assert query.base_layer.weight.dtype == torch.float32


def test_bf16_scores_are_scored_as_trained_not_merged():
    classifier, batcher, _ = _classifier("bf16")
    with torch.no_grad():
        for name, weight in classifier.named_parameters():
            if "lora_B" in name:
                weight.normal_(0.0, 0.05)
    texts = ["The city of Lyon is in France.", "Oslo is in Brazil.", "Ranam is in North Korea."]
    # Merging would fold the adapter into weights that autocast then rounds to bf16: not how it trained.
    merged = predict_scores(classifier, batcher, texts, batch_size=2, merged=True)
    unmerged = predict_scores(classifier, batcher, texts, batch_size=2, merged=False)
    assert np.array_equal(merged, unmerged)


TINY = dict(max_steps_per_stage=3, eval_every=2, n_test=32, max_length=32, min_val_labels=0)


def test_a_trial_records_its_precision_and_each_precision_is_its_own_trial():
    results = {}
    for precision in ("fp32", "bf16"):
        spec = TrialSpec(task="cities", n_weak=24, n_gold=12, weak_labeler="bow", params={**TINY, "precision": precision})
        results[precision] = run_trial(spec)
        assert results[precision].precision == precision and results[precision].key == spec.key()
        assert results[precision].machine == cpu_kind()  # the kernels' kind: bf16 differs a little between kinds
    assert results["fp32"].key != results["bf16"].key
    assert results["fp32"].threshold != results["bf16"].threshold  # the arithmetic really changed the scores


@pytest.mark.parametrize("precision, attention", [("fp32", "sdpa"), ("bf16", "eager")])
def test_a_cpus_bf16_trains_with_eager_attention_and_fp32_keeps_sdpa(precision, attention):
    # torch's CPU flash-attention backward in bf16 cost more than the rest of a step
    # (python -m bench.engine.attention; docs/bench/attention-word_sentiment.json).
    classifier, _, runtime = _classifier(precision)
    assert classifier.backbone.config._attn_implementation == attention
    assert runtime.attention == (None if attention == "sdpa" else "eager")


def test_resident_models_keep_each_attention_apart():
    from worker.engine.resident import ResidentModels

    resident, model = ResidentModels(), resolve_model("minilm-l6")
    with resident.borrow(model, pick_runtime("fp32")) as fp32, resident.borrow(model, pick_runtime("bf16")) as bf16:
        assert fp32.model.config._attn_implementation == "sdpa"
        assert bf16.model.config._attn_implementation == "eager"
