"""Few-shot in-context learning: the base causal LM reads labeled shots, no training at all.

Score = logit("1") - logit("0") for the token after the query; the shots are every label the trial
bought (weak ones hardened at 0.5), reshuffled for every query.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models import load_causal_lm, load_tokenizer
from ..prompts import few_shot_prompt, shuffled_shots
from ..spec import ProgressEvent
from ..training.loop import model_positions
from .context import MethodOutcome, TrialContext, hard, prior_threshold, unlabeled_sample


def _label_token_id(tokenizer, label: str) -> int:
    # The label follows a newline in the prompt; the last piece of its encoding is the label itself.
    return tokenizer.encode(f"\n{label}", add_special_tokens=False)[-1]


@torch.inference_mode()
def icl_scores(model, tokenizer, prompts: list[str], device, batch_size: int, max_length: int) -> np.ndarray:
    yes, no = _label_token_id(tokenizer, "1"), _label_token_id(tokenizer, "0")
    scores = []
    for start in range(0, len(prompts), batch_size):
        enc = tokenizer(
            prompts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        logits = model(**enc).logits
        last = enc["attention_mask"].sum(dim=1) - 1
        final = logits[torch.arange(logits.shape[0], device=logits.device), last].float()
        scores.append((final[:, yes] - final[:, no]).cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)


def run_icl(ctx: TrialContext) -> MethodOutcome:
    plan, params = ctx.plan, ctx.spec.params
    outcome = MethodOutcome(test_scores=None)
    shots = []
    if plan.gold_shots:
        gold = ctx.draw.take(plan.gold_shots)
        shots += list(zip(gold.texts, gold.labels))
    if plan.weak_shots:
        weak = ctx.draw.take(plan.weak_shots)
        outcome.weak_bought.append(weak)
        shots += list(zip(weak.texts, hard(weak.weak_probs)))

    tokenizer = load_tokenizer(ctx.model)
    model = load_causal_lm(ctx.model, ctx.runtime.dtype).to(ctx.runtime.device).eval()
    # Shots make prompts long: a smaller batch keeps memory flat.
    batch = max(1, ctx.eval_batch_size // 4)
    positions = model_positions(model.config)
    max_length = min(params.max_length * (len(shots) + 1), positions) if params.max_length else positions

    def scores(queries: list[str]) -> np.ndarray:  # logit("1") - logit("0"): log-odds, as a head's
        prompts = [few_shot_prompt(shuffled_shots(shots, len(shots), ctx.rng), q) for q in queries]
        with ctx.runtime.autocast():
            return icl_scores(model, tokenizer, prompts, ctx.runtime.device, batch, max_length).astype(np.float64)

    outcome.test_scores = scores(ctx.test.texts)
    if ctx.progress:
        ctx.progress(ProgressEvent(stage="icl", step=len(ctx.test), total_steps=len(ctx.test)))
    outcome.threshold = prior_threshold(scores(unlabeled_sample(ctx)), ctx.draw.pool.positive_rate)
    return outcome
