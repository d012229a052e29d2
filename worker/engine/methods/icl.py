"""Few-shot in-context learning: the base causal LM reads labeled shots, no training at all.

Score = logit("1") - logit("0") for the token after the query; the shots are every label the trial
bought (weak ones hardened at 0.5), reshuffled for every query. A task of K > 2 classes shows its
class names as the answers and scores each class by the logit of its name's first token,
normalized over the classes (log-probabilities).
"""

from __future__ import annotations

import numpy as np
import torch

from ..models import load_causal_lm, load_tokenizer
from ..prompts import few_shot_prompt, shuffled_shots
from ..spec import ProgressEvent
from ..tasks.base import BINARY_CLASSES
from ..training.loop import model_positions
from .context import MethodOutcome, TrialContext, decision_cut, hard, unlabeled_sample


def _label_token_id(tokenizer, label: str) -> int:
    # The label follows a newline in the prompt; the last piece of its encoding is the label itself.
    return tokenizer.encode(f"\n{label}", add_special_tokens=False)[-1]


def class_token_ids(tokenizer, classes: tuple[str, ...]) -> list[int]:
    """The first token of each class name as it follows the prompt's newline; the names must differ there."""
    newline = tokenizer.encode("\n", add_special_tokens=False)
    firsts = []
    for name in classes:
        ids = tokenizer.encode(f"\n{name}", add_special_tokens=False)
        firsts.append(ids[len(newline)] if ids[: len(newline)] == newline and len(ids) > len(newline) else ids[0])
    if len(set(firsts)) < len(firsts):
        same = [n for n, t in zip(classes, firsts) if firsts.count(t) > 1]
        raise ValueError(f"in-context learning reads a class by its first token, and classes {same} begin with the "
                         "same token for this model: rename them so their first words differ")
    return firsts


@torch.inference_mode()
def icl_scores(model, tokenizer, prompts: list[str], device, batch_size: int, max_length: int,
               classes: tuple[str, ...] = BINARY_CLASSES) -> np.ndarray:
    if tuple(classes) == BINARY_CLASSES:
        answer_ids = [_label_token_id(tokenizer, "0"), _label_token_id(tokenizer, "1")]
    else:  # named classes ("spam", "ham"), or K > 2 of them
        answer_ids = class_token_ids(tokenizer, classes)
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
        answers = final[:, answer_ids]
        if len(classes) > 2:
            scores.append(torch.log_softmax(answers, dim=-1).cpu().numpy())
        else:
            scores.append((answers[:, 1] - answers[:, 0]).cpu().numpy())
    empty = (0,) if len(classes) == 2 else (0, len(classes))
    return np.concatenate(scores) if scores else np.zeros(empty, dtype=np.float32)


def run_icl(ctx: TrialContext) -> MethodOutcome:
    plan, params = ctx.plan, ctx.spec.params
    outcome = MethodOutcome(test_scores=None)
    shots = []
    if plan.gold_shots:
        gold = ctx.draw.take_gold(plan.gold_shots)
        shots += [(text, ctx.classes[int(y)]) for text, y in zip(gold.texts, gold.labels)]
    if plan.weak_shots:
        weak = ctx.draw.take_weak(plan.weak_shots)
        outcome.weak_bought.append(weak)
        shots += [(text, ctx.classes[int(y)]) for text, y in zip(weak.texts, hard(weak.weak_probs))]

    tokenizer = load_tokenizer(ctx.model)
    model = load_causal_lm(ctx.model, ctx.runtime.dtype).to(ctx.runtime.device).eval()
    # Shots make prompts long: a smaller batch keeps memory flat.
    batch = max(1, ctx.eval_batch_size // 4)
    positions = model_positions(model.config)
    max_length = min(params.max_length * (len(shots) + 1), positions) if params.max_length else positions

    def scores(queries: list[str]) -> np.ndarray:  # logit("1") - logit("0"): log-odds, as a head's
        prompts = [few_shot_prompt(shuffled_shots(shots, len(shots), ctx.rng), q) for q in queries]
        with ctx.runtime.autocast():
            return icl_scores(model, tokenizer, prompts, ctx.runtime.device, batch, max_length,
                              ctx.classes).astype(np.float64)

    outcome.test_scores = scores(ctx.test.texts)
    if ctx.progress:
        ctx.progress(ProgressEvent(stage="icl", step=len(ctx.test), total_steps=len(ctx.test)))
    outcome.threshold = decision_cut(scores(unlabeled_sample(ctx)), ctx.draw.pool)
    return outcome
