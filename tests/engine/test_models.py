"""Model specs resolve to loadable models with no network: packaged, local directory, hub id."""

from __future__ import annotations

import json

import pytest
import torch

from worker.engine import MethodParams, ModelSpecError, TrialSpec, resolve_model, run_trial
from worker.engine.models import PACKAGED_MODELS, load_tokenizer


def test_packaged_encoder_resolves_offline():
    model = resolve_model("minilm-l6")
    assert model.kind == "encoder"
    assert (PACKAGED_MODELS["minilm-l6"].package in model.path) and model.path.endswith("model")


def test_packaged_gguf_resolves_to_a_cached_safetensors_copy():
    model = resolve_model("smollm2-135m")
    assert model.kind == "causal"
    files = json.loads((__import__("pathlib").Path(model.path) / "config.json").read_text())
    assert files["architectures"] == ["LlamaForCausalLM"]
    assert any(p.name.endswith(".safetensors") for p in __import__("pathlib").Path(model.path).iterdir())


def test_opt_in_model_refuses_without_accepting_its_terms(monkeypatch):
    monkeypatch.delenv("LABELMIX_ACCEPT_GEMMA_TERMS", raising=False)
    with pytest.raises(ModelSpecError, match="LABELMIX_ACCEPT_GEMMA_TERMS"):
        resolve_model("gemma3-270m")


def test_unknown_spec_names_the_choices():
    with pytest.raises(ModelSpecError, match="minilm-l6"):
        resolve_model("not-a-model")


def test_hub_id_unreachable_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match="cannot load model 'someorg/somemodel'"):
        resolve_model("someorg/somemodel")


def _tiny_local_model(tmp_path, kind: str):
    """A small random model saved in the Hugging Face layout, as a user's local checkpoint would be."""
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    source = resolve_model("minilm-l6" if kind == "encoder" else "smollm2-135m")
    tokenizer = load_tokenizer(source)
    torch.manual_seed(0)
    if kind == "encoder":
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64)
        model = BertModel(config)
    else:
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=2, intermediate_size=64)
        model = LlamaForCausalLM(config)
    target = tmp_path / kind
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.mark.parametrize("kind,method", [("encoder", "seq_sft"), ("causal", "icl"), ("causal", "seq_sft")])
def test_local_directory_model_runs_a_trial(tmp_path, kind, method):
    path = _tiny_local_model(tmp_path, kind)
    assert resolve_model(str(path)).kind == kind
    spec = TrialSpec(task="cities", model=str(path), method=method, n_weak=0, n_gold=6, seed=0, weak_labeler="bow",
                     params=MethodParams(max_steps_per_stage=2, n_test=16, max_length=24))
    result = run_trial(spec)
    assert 0 <= result.test_accuracy <= 1


def test_local_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ModelSpecError, match="config.json"):
        resolve_model(str(tmp_path))


@pytest.mark.slow
def test_converted_copy_gives_the_gguf_logits():
    from transformers import AutoModelForCausalLM

    from worker.engine.models import _package_dir

    packaged = PACKAGED_MODELS["smollm2-135m"]
    gguf = _package_dir(packaged.package) / packaged.relative_path
    copy = resolve_model("smollm2-135m")
    tokenizer = load_tokenizer(copy)
    inputs = tokenizer(["The city of Paris is in France.\n"], return_tensors="pt")
    with torch.inference_mode():
        original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)(**inputs).logits
        converted = AutoModelForCausalLM.from_pretrained(copy.path)(**inputs).logits
    torch.testing.assert_close(converted, original, rtol=0, atol=1e-5)
