"""Evaluation batches formed by length give the scores of one-at-a-time scoring, in the caller's
order; the torch thread setting is applied."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.runtime import apply_threads, pick_runtime, seed_everything
from worker.engine.settings import engine_settings
from worker.engine.training.classifier import build_classifier
from worker.engine.training.loop import Batcher, predict_scores


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
