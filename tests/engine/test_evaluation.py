"""Evaluation batches formed by length give the scores of one-at-a-time scoring, in the caller's
order; scoring with the adapter merged gives the unmerged scores and leaves every weight as it was;
the torch thread setting is applied."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.runtime import apply_threads, pick_runtime, seed_everything
from worker.engine.settings import engine_settings
from worker.engine.training.classifier import build_classifier, merged_projections
from worker.engine.training.loop import Batcher, predict_scores
from worker.engine.training.multi_lora import MemberView, MultiLoRAClassifier


def test_length_sorted_batches_score_each_text_as_alone():
    model = resolve_model("minilm-l6")
    runtime = pick_runtime()
    seed_everything(0)
    classifier = build_classifier(model, runtime)
    batcher = Batcher(load_tokenizer(model), runtime, 128)
    rng = np.random.default_rng(0)
    words = "the a quiet river bright city old harbor runs past every stone wall".split()
    # Lengths from 1 to 40 words, shuffled: arrival order is unrelated to length.
    texts = [" ".join(rng.choice(words, size=n)) for n in rng.permutation(np.arange(1, 41))]
    batched = predict_scores(classifier, batcher, texts, batch_size=8)
    alone = np.array([predict_scores(classifier, batcher, [t], batch_size=1)[0] for t in texts])
    assert batched.dtype == np.float64 and batched.shape == (40,)
    assert np.allclose(batched, alone, atol=1e-5)
    assert len(np.unique(np.round(batched, 6))) > 30  # distinct texts, distinct scores: the order is checked
    assert predict_scores(classifier, batcher, [], batch_size=8).shape == (0,)


def _trained_looking(classifier):
    """Draw the adapters' B matrices small and non-zero, as training leaves them (peft starts them at 0)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, weight in classifier.named_parameters():
            if "lora_B" in name:
                weight.normal_(0.0, 0.05)
    return classifier


def test_merged_scoring_gives_the_unmerged_scores_and_writes_no_weight():
    model, runtime = resolve_model("minilm-l6"), pick_runtime()
    seed_everything(0)
    classifier = _trained_looking(build_classifier(model, runtime))
    batcher = Batcher(load_tokenizer(model), runtime, 128)
    texts = [f"The city of {name} is in {place}." for name, place in
             [("Ranam", "North Korea"), ("Lagoa", "Brazil"), ("Oslo", "Norway"), ("Lyon", "France")] * 4]
    before = {name: p.detach().clone() for name, p in classifier.named_parameters()}
    unmerged = predict_scores(classifier, batcher, texts, batch_size=8, merged=False)
    merged = predict_scores(classifier, batcher, texts, batch_size=8, merged=True)
    assert np.abs(unmerged).max() > 1e-3  # the adapter moves the scores: a merge that dropped it would show
    assert np.allclose(merged, unmerged, rtol=1e-5, atol=1e-7) and not np.array_equal(merged, unmerged)
    # The frozen base and the adapter are bit for bit what they were: training goes on unchanged.
    assert all(torch.equal(before[name], p) for name, p in classifier.named_parameters())
    # No merged forward is left behind (each LoRA layer keeps the lean forward it had before).
    assert not any(isinstance(module.__dict__.get("forward"), partial) for module in classifier.modules())
    with torch.no_grad():
        without_adapter = predict_scores(classifier, batcher, texts, batch_size=8, merged=False)
    assert np.array_equal(without_adapter, unmerged)


def test_a_group_member_scores_merged_as_its_own_classifier():
    """A trial trained in a group scores through its own adapter folded in, as it would alone."""
    model, runtime = resolve_model("minilm-l6"), pick_runtime()
    seed_everything(0)
    alone = _trained_looking(build_classifier(model, runtime))
    batcher = Batcher(load_tokenizer(model), runtime, 128)
    texts = ["The city of Oslo is in Norway.", "The city of Lyon is in Brazil.", "The city of Ranam is in Asia."]
    lone = predict_scores(alone, batcher, texts, batch_size=4, merged=True)
    state = alone.trainable_state()
    base = alone.backbone.unload()  # the bare base, as group.py lends it
    group = MultiLoRAClassifier(base, base.config.hidden_size, "mean", members=2)
    try:
        member = MemberView(group, 1)
        member.load_trainable_state(state)
        grouped = predict_scores(member, batcher, texts, batch_size=4, merged=True)
        grouped_unmerged = predict_scores(member, batcher, texts, batch_size=4, merged=False)
    finally:
        group.detach()
    assert np.allclose(grouped, lone, rtol=1e-5, atol=1e-7)
    assert np.allclose(grouped, grouped_unmerged, rtol=1e-5, atol=1e-7)
    assert not any("forward" in module.__dict__ for module in base.modules())


def test_a_bf16_base_is_scored_unmerged():
    """Added to bf16 weights, a small adapter update would round away: such a base keeps its forward."""
    base = torch.nn.Linear(4, 4).to(torch.bfloat16)
    wrapper = torch.nn.Linear(4, 4)
    with merged_projections([(wrapper, base, lambda: torch.full((4, 4), 1e-3))]):
        assert "forward" not in wrapper.__dict__
    fp32 = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with merged_projections([(wrapper, fp32, lambda: torch.ones(4, 4))]):
        assert torch.allclose(wrapper(x), x @ (fp32.weight + 1).T + fp32.bias)
    assert "forward" not in wrapper.__dict__


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_gives_what_the_tokenizer_would(side):
    tokenizer = load_tokenizer(resolve_model("minilm-l6"))
    tokenizer.padding_side = side  # a fresh tokenizer per load: nothing else sees this
    batcher = Batcher(tokenizer, pick_runtime(), 16)
    ids = batcher.token_ids(["a", "a much longer text than the first", "", "two words", "x " * 40])
    ours = batcher.pad(ids)
    theirs = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
    for name in ("input_ids", "attention_mask"):
        assert ours[name].dtype == theirs[name].dtype
        assert torch.equal(ours[name], theirs[name])


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    engine_settings.cache_clear()


def test_the_thread_setting_is_applied(monkeypatch, restore_threads):
    monkeypatch.setenv("LABELMIX_TORCH_THREADS", "1")
    engine_settings.cache_clear()
    pick_runtime()  # every trial and labeler picks its runtime first
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("LABELMIX_TORCH_THREADS", "0")  # 0: leave torch as it is
    engine_settings.cache_clear()
    torch.set_num_threads(2)
    assert apply_threads() == 2
