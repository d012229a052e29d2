"""The paper's few-shot prompt, shot shuffling, and in-context-learning scores read from a causal LM."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from worker.engine.budget import plan_labels
from worker.engine.methods import icl as icl_module
from worker.engine.methods.context import TrialContext, trial_draw
from worker.engine.methods.icl import _label_token_id, icl_scores, run_icl
from worker.engine.prompts import few_shot_prompt, shuffled_shots
from worker.engine.runtime import Runtime
from worker.engine.spec import Method, MethodParams, TrialSpec
from worker.engine.tasks import Split

SHOTS = [("Paris is in France.", 1), ("Lima is in Spain.", 0), ("Oslo is in Norway.", 1)]


# --------------------------------------------------------------------------- prompt format


def test_few_shot_prompt_exact_string():
    prompt = few_shot_prompt(SHOTS, "Rome is in Italy.")
    assert prompt == (
        "Paris is in France.\n1\n\nLima is in Spain.\n0\n\nOslo is in Norway.\n1\n\nRome is in Italy.\n"
    )


def test_few_shot_prompt_follows_the_paper_formula():
    shots = [("a b", 0), ("c", 1)]
    query = "q?"
    assert few_shot_prompt(shots, query) == "\n\n".join(f"{t}\n{y}" for t, y in shots) + f"\n\n{query}\n"


def test_few_shot_prompt_without_shots_is_the_bare_query():
    assert few_shot_prompt([], "Rome is in Italy.") == "Rome is in Italy.\n"


def test_few_shot_prompt_prints_numpy_labels_as_digits():
    shots = [("x", np.int64(1)), ("y", np.int64(0))]
    assert few_shot_prompt(shots, "z") == "x\n1\n\ny\n0\n\nz\n"


def test_shuffled_shots_draws_k_without_replacement():
    shots = [(f"text {i}", i % 2) for i in range(6)]
    rng = np.random.default_rng(0)
    for k in range(1, 7):
        drawn = shuffled_shots(shots, k, rng)
        assert len(drawn) == k
        assert len(set(drawn)) == k
        assert set(drawn) <= set(shots)


def test_shuffled_shots_reshuffles_with_the_rng():
    shots = [(f"text {i}", i % 2) for i in range(5)]
    rng = np.random.default_rng(1)
    orders = [tuple(shuffled_shots(shots, 5, rng)) for _ in range(20)]
    assert all(sorted(o) == sorted(shots) for o in orders)
    assert len(set(orders)) > 10  # a fresh order per call, not one fixed shuffle
    again = np.random.default_rng(1)
    assert orders == [tuple(shuffled_shots(shots, 5, again)) for _ in range(20)]


def test_shuffled_shots_subsets_vary():
    shots = [(f"text {i}", i % 2) for i in range(8)]
    rng = np.random.default_rng(2)
    subsets = {frozenset(shuffled_shots(shots, 2, rng)) for _ in range(40)}
    assert len(subsets) > 10  # k of n drawn afresh, not always the first k


# --------------------------------------------------------------------------- ICL scores


@pytest.fixture(scope="module")
def tokenizer():
    from worker.engine.models import load_tokenizer, resolve_model
    from worker.engine.settings import engine_settings

    if not (engine_settings().cache_dir / "models" / "smollm2-135m" / "config.json").exists():
        pytest.skip("SmolLM2 is not converted yet: run worker.engine.models.resolve_model('smollm2-135m') once")
    return load_tokenizer(resolve_model("smollm2-135m"))


class FakeCausalLM(nn.Module):
    """Next-token logits that encode where they were read: logit(yes) - logit(no) = 100*token + 2*position.

    Every other vocabulary entry holds a large constant, so reading the wrong column shows too.
    """

    def __init__(self, vocab_size: int, yes: int, no: int, scale: float = 1.0):
        super().__init__()
        self.vocab_size, self.yes, self.no, self.scale = vocab_size, yes, no, scale
        self.config = SimpleNamespace(max_position_embeddings=8192)
        self.batches: list[dict] = []

    def forward(self, input_ids, attention_mask, **_):
        self.batches.append({"input_ids": input_ids.clone(), "attention_mask": attention_mask.clone()})
        batch, length = input_ids.shape
        position = torch.arange(length).expand(batch, length).float()
        logits = torch.full((batch, length, self.vocab_size), 1e4)
        logits[:, :, self.yes] = (input_ids.float() * 100 + position) * self.scale
        logits[:, :, self.no] = -position * self.scale
        return SimpleNamespace(logits=logits)


def expected_score(tokenizer, prompt: str, max_length: int = 10_000) -> float:
    ids = tokenizer(prompt, truncation=True, max_length=max_length)["input_ids"]
    return 100.0 * ids[-1] + 2.0 * (len(ids) - 1)


def fake_lm(tokenizer, scale: float = 1.0) -> FakeCausalLM:
    return FakeCausalLM(len(tokenizer), _label_token_id(tokenizer, "1"), _label_token_id(tokenizer, "0"), scale)


def test_label_token_ids_are_the_digits(tokenizer):
    yes, no = _label_token_id(tokenizer, "1"), _label_token_id(tokenizer, "0")
    assert yes != no
    assert tokenizer.decode([yes]) == "1" and tokenizer.decode([no]) == "0"
    assert yes == tokenizer.convert_tokens_to_ids("1") and no == tokenizer.convert_tokens_to_ids("0")


def test_label_tokens_match_the_labels_inside_a_prompt(tokenizer):
    # The label the model is asked for must be tokenized the way the shots' labels are.
    yes, no = _label_token_id(tokenizer, "1"), _label_token_id(tokenizer, "0")
    ids = tokenizer(few_shot_prompt(SHOTS, "Rome is in Italy."), add_special_tokens=False)["input_ids"]
    newline = tokenizer.encode("\n", add_special_tokens=False)[-1]
    label_ids = [ids[i + 1] for i in range(len(ids) - 1) if ids[i] == newline and ids[i + 1] in (yes, no)]
    assert label_ids == [yes, no, yes]
    assert ids[-1] == newline  # the prompt ends where the label would go


def test_icl_score_is_read_at_the_last_real_token_with_right_padding(tokenizer):
    prompts = [
        few_shot_prompt(SHOTS, "Rome is in Italy."),
        "Short.\n",
        few_shot_prompt(SHOTS[:1], "The city of Pruszcz Gdański is in Luxembourg."),
    ]
    model = fake_lm(tokenizer)
    scores = icl_scores(model, tokenizer, prompts, "cpu", batch_size=8, max_length=512)
    assert scores.tolist() == [expected_score(tokenizer, p) for p in prompts]
    # The batch really was right-padded: the short prompt's mask ends in zeros.
    mask = model.batches[0]["attention_mask"]
    assert mask.shape[0] == 3 and mask[1, -1] == 0 and mask[1, 0] == 1
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    assert mask.sum(dim=1).tolist() == lengths


def test_icl_scores_do_not_depend_on_batching(tokenizer):
    prompts = [few_shot_prompt(SHOTS[: i % 4], f"Query number {i} " + "word " * i) for i in range(7)]
    model = fake_lm(tokenizer)
    whole = icl_scores(model, tokenizer, prompts, "cpu", batch_size=16, max_length=512)
    pieces = icl_scores(model, tokenizer, prompts, "cpu", batch_size=3, max_length=512)
    assert np.array_equal(whole, pieces)
    assert len(whole) == 7
    assert icl_scores(model, tokenizer, [], "cpu", batch_size=3, max_length=512).shape == (0,)


def test_icl_truncation_keeps_the_end_of_the_prompt(tokenizer):
    prompt = few_shot_prompt(SHOTS * 5, "Rome is in Italy.")
    score = icl_scores(fake_lm(tokenizer), tokenizer, [prompt, "x\n"], "cpu", batch_size=2, max_length=10)
    newline = tokenizer.encode("\n", add_special_tokens=False)[-1]
    # Left truncation: the 10 tokens kept end with the prompt's final newline, read at position 9.
    assert score[0] == 100.0 * newline + 2.0 * 9
    assert score[0] == expected_score(tokenizer, prompt, max_length=10)


def test_run_icl_prompts_every_bought_label_and_reads_log_odds(tokenizer, monkeypatch):
    n = 30
    pool = Split(
        ids=[f"p{i}" for i in range(n)],
        texts=[f"pool statement {i}." for i in range(n)],
        labels=np.array([i % 2 for i in range(n)]),
        weak_probs=np.array([0.9 if i % 3 else 0.2 for i in range(n)], dtype=np.float32),
    )
    test = Split(ids=["t0", "t1", "t2"], texts=["query a.", "query b c d e.", "query f g h i j k l m n."], labels=np.array([0, 1, 1]))
    spec = TrialSpec(task="t", model="smollm2-135m", method=Method.icl, n_weak=3, n_gold=2, params=MethodParams())
    rng = np.random.default_rng(0)
    runtime = Runtime(torch.device("cpu"), torch.float32)
    ctx = TrialContext(spec, plan_labels(spec, True), None, runtime, trial_draw(pool, 0, rng), test, rng)

    model = fake_lm(tokenizer, scale=1e-4)  # scores near 2: the sigmoid stays informative
    prompts: list[str] = []

    def recording_prompt(shots, query):
        prompts.append(few_shot_prompt(shots, query))
        return prompts[-1]

    monkeypatch.setattr(icl_module, "load_tokenizer", lambda _model: tokenizer)
    monkeypatch.setattr(icl_module, "load_causal_lm", lambda _model, _dtype: model)
    monkeypatch.setattr(icl_module, "few_shot_prompt", recording_prompt)

    outcome = run_icl(ctx)

    assert len(outcome.weak_bought) == 1 and len(outcome.weak_bought[0]) == 3
    weak = outcome.weak_bought[0]
    bought = set(np.flatnonzero(~np.isin(np.arange(n), ctx.draw.untaken())).tolist())
    assert len(bought) == 5
    gold_idx = bought - {int(i[1:]) for i in weak.ids}
    expected_shots = {f"{pool.texts[i]}\n{pool.labels[i]}" for i in gold_idx}
    expected_shots |= {f"{t}\n{int(p > 0.5)}" for t, p in zip(weak.texts, weak.weak_probs)}
    # The test queries, then the unbought pool examples that place the decision threshold.
    assert len(prompts) == 3 + (n - 5)
    for prompt, query in zip(prompts, test.texts):
        blocks = prompt[: -len(f"\n\n{query}\n")].split("\n\n")
        assert prompt.endswith(f"\n\n{query}\n")
        assert set(blocks) == expected_shots and len(blocks) == 5
    # The shots are reshuffled for every query.
    assert len({prompt[: prompt.index(query)] for prompt, query in zip(prompts, test.texts)}) > 1
    # The score is logit("1") - logit("0") after each prompt: log-odds, as a trained head's are.
    scores = np.array([1e-4 * expected_score(tokenizer, p) for p in prompts])
    assert np.allclose(outcome.test_scores, scores[:3], rtol=1e-5)
    assert len(set(outcome.test_scores.round(6).tolist())) == 3
    # The threshold sits at the pool's class balance (half positive) among the unbought examples' scores.
    assert outcome.threshold == pytest.approx(np.quantile(scores[3:], 1 - pool.positive_rate))
