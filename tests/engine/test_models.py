"""Model names resolve to loadable models with no network: packaged, or allowed by the operator
(LABELMIX_ALLOWED_MODELS: a local directory or a hub id); any other spec, a path above all, is refused."""

from __future__ import annotations

import json

import pytest
import torch

from worker.engine import MethodParams, ModelSpecError, TrialSpec, resolve_model, run_trial
from worker.engine.models import PACKAGED_MODELS, check_model_name, load_tokenizer
from worker.engine.settings import engine_settings


@pytest.fixture
def allow(monkeypatch):
    """allow(models): set LABELMIX_ALLOWED_MODELS (a dict or a list) for this test."""

    def _allow(models) -> None:
        monkeypatch.setenv("LABELMIX_ALLOWED_MODELS", json.dumps(models))
        engine_settings.cache_clear()

    yield _allow
    engine_settings.cache_clear()  # before monkeypatch restores the environment: the next read sees it


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


def test_allowed_hub_id_unreachable_gives_a_clear_error(monkeypatch, allow):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match="unknown model 'someorg/somemodel'"):
        resolve_model("someorg/somemodel")  # not allowed: the hub is never asked
    allow(["someorg/somemodel"])  # a list allows each hub id under its own name
    with pytest.raises(ModelSpecError, match="cannot load model 'someorg/somemodel' from the Hugging Face hub"):
        resolve_model("someorg/somemodel")
    allow({"their-model": "someorg/somemodel"})
    with pytest.raises(ModelSpecError, match="cannot load model 'their-model' from the Hugging Face hub"):
        resolve_model("their-model")


def test_paths_and_odd_specs_get_one_message_that_reveals_no_file(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))  # loadable, were paths allowed
    odd = ["/etc", "/nonexistent", "~\u0000", "~/.ssh", "x" * 10_000, "../../etc", str(model_dir), str(tmp_path)]
    messages = set()
    for spec in odd:
        with pytest.raises(ModelSpecError) as refused:
            resolve_model(spec)
        with pytest.raises(ModelSpecError) as checked:
            check_model_name(spec)
        messages |= {str(refused.value), str(checked.value)}
    assert len(messages) == 1, messages
    (message,) = messages
    assert message.startswith("unknown model:") and "minilm-l6" in message and "LABELMIX_ALLOWED_MODELS" in message
    assert "config.json" not in message and "/" not in message


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
def test_allowed_local_directory_runs_a_trial(tmp_path, allow, kind, method):
    path = _tiny_local_model(tmp_path, kind)
    with pytest.raises(ModelSpecError, match="unknown model"):
        resolve_model(str(path))  # not allowed yet
    allow({"tiny": str(path)})
    resolved = resolve_model("tiny")
    assert (resolved.kind, resolved.path, resolved.spec) == (kind, str(path), "tiny")
    spec = TrialSpec(task="cities", model="tiny", method=method, n_weak=0, n_gold=6, seed=0, weak_labeler="bow",
                     params=MethodParams(max_steps_per_stage=2, n_test=16, max_length=24))
    result = run_trial(spec)
    assert 0 <= result.test_accuracy <= 1


def test_a_list_allows_a_directory_under_its_own_spelling(tmp_path, allow):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    allow([str(tmp_path)])
    assert resolve_model(str(tmp_path)).kind == "causal"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (None, "no readable JSON config.json"),
        ("{not json", "no readable JSON config.json"),
        ("[1, 2]", "config.json is not a JSON object"),
        ('"a string"', "config.json is not a JSON object"),
    ],
    ids=["missing", "not-json", "a-list", "a-string"],
)
def test_allowed_directory_with_a_bad_config_is_refused_by_name(tmp_path, allow, config, words):
    if config is not None:
        (tmp_path / "config.json").write_text(config)
    allow({"broken": str(tmp_path)})
    with pytest.raises(ModelSpecError, match=words) as refused:
        resolve_model("broken")
    assert "'broken'" in str(refused.value) and str(tmp_path) not in str(refused.value)


def test_allowed_location_that_is_gone_is_refused(tmp_path, allow):
    allow({"gone": str(tmp_path / "deleted")})
    with pytest.raises(ModelSpecError, match="'gone' is allowed but its location is missing") as refused:
        resolve_model("gone")
    assert str(tmp_path) not in str(refused.value)


def test_packaged_names_cannot_be_redirected(tmp_path, allow):
    allow({"minilm-l6": str(tmp_path)})
    assert PACKAGED_MODELS["minilm-l6"].package in resolve_model("minilm-l6").path


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


_CONCURRENT_LOADS = """
import sys, threading
import torch
torch.set_num_threads(1)
from worker.engine.models import load_backbone, load_tokenizer, resolve_model

model = resolve_model("minilm-l3")  # the default labeler's cut of MiniLM-L6: its loads silence a warning
errors = []
def load():
    try:
        for _ in range(2):
            load_tokenizer(model)
            load_backbone(model, torch.float32)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=load) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print("ERRORS", errors)
"""


def test_threads_of_one_process_load_models_at_once():
    # A fresh interpreter, so the first import of transformers is among the racing loads (without the
    # lock one thread's import failed with ImportError, and a cut model's "not used" warning leaked).
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _CONCURRENT_LOADS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ERRORS []" in done.stdout, done.stdout[-2000:]
    assert "were not used" not in done.stderr, done.stderr[-2000:]
