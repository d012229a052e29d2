"""Sequential SFT and its variants: a weak stage, then a gold stage, one adapter throughout.

- seq_sft: both stages on randomly bought labels.
- logconf_sft: the weak stage adds the log-confidence auxiliary loss.
- uncertainty_sft: gold labels are bought for the pool examples the weak-trained model is least sure of.
- prompted_sft: every training and inference input carries a freshly shuffled few-shot weak prefix.
"""

from __future__ import annotations

from ..metrics import most_uncertain
from ..models import load_tokenizer
from ..prompts import few_shot_prompt, shuffled_shots
from ..spec import Method
from ..tasks import Split
from ..training.classifier import build_classifier
from ..training.loop import Batcher, Formatter, identity, input_limit, predict_probs, predict_scores, train_stage
from .context import MethodOutcome, TrialContext, hard, prior_threshold, stage_data, unlabeled_sample


def _shot_formatter(ctx: TrialContext, outcome: MethodOutcome) -> Formatter:
    """Buy the shots and return a formatter that prefixes k of them, reshuffled, to every input."""
    plan = ctx.plan
    if plan.weak_shots:
        bought = ctx.draw.take(plan.weak_shots)
        outcome.weak_bought.append(bought)
        shots = list(zip(bought.texts, hard(bought.weak_probs)))
    else:
        bought = ctx.draw.take(plan.gold_shots)
        shots = list(zip(bought.texts, bought.labels))
    k = ctx.spec.params.n_shots
    return lambda text: few_shot_prompt(shuffled_shots(shots, k, ctx.rng), text)


def _buy_uncertain_gold(ctx: TrialContext, predict, n: int) -> Split:
    """Gold labels for the n candidates with the highest binary entropy under the current model."""
    candidates = ctx.draw.untaken()
    limit = ctx.spec.params.uncertainty_candidates
    if limit is not None and limit < len(candidates):
        candidates = ctx.rng.choice(candidates, limit, replace=False)
    if len(candidates) < n:
        raise ValueError(f"only {len(candidates)} pool examples are left to choose {n} gold labels from")
    probs = predict([ctx.draw.pool.texts[i] for i in candidates])
    chosen = candidates[most_uncertain(probs, n)]
    # Validation comes from the selected examples too: shuffle so it is a fair sample of them.
    return ctx.draw.take_indices(ctx.rng.permutation(chosen))


def run_sequential_sft(ctx: TrialContext) -> MethodOutcome:
    spec, plan, params = ctx.spec, ctx.plan, ctx.spec.params
    outcome = MethodOutcome(test_scores=None)
    classifier = build_classifier(ctx.model, ctx.runtime)
    formatter = _shot_formatter(ctx, outcome) if spec.method == Method.prompted_sft else identity
    limit = input_limit(params, classifier.backbone.config)
    batcher = Batcher(load_tokenizer(ctx.model), ctx.runtime, limit, formatter)

    def predict(texts):  # probabilities, for uncertainty sampling's entropy
        return predict_probs(classifier, batcher, texts, params.eval_batch_size)

    def scores(texts):  # log-odds, for the test and its threshold: they never saturate
        return predict_scores(classifier, batcher, texts, params.eval_batch_size)

    def train(name: str, examples: Split, targets, n_val: int, use_logconf: bool = False) -> None:
        data = stage_data(examples, targets, n_val)
        # Only a trained state is worth keeping: a first stage starts from a random head.
        stage_params = params if outcome.stages else params.model_copy(update={"keep_stage_start": False})
        outcome.stages.append(
            train_stage(name, classifier, batcher, data, stage_params, ctx.rng, use_logconf=use_logconf,
                        progress=ctx.progress)
        )

    if plan.weak_stage.total:
        weak = ctx.draw.take(plan.weak_stage.total)
        outcome.weak_bought.append(weak)
        train("weak", weak, weak.weak_probs, plan.weak_stage.n_val, use_logconf=spec.method == Method.logconf_sft)

    if plan.gold_stage.total:
        if spec.method == Method.uncertainty_sft:
            limit, left = params.uncertainty_candidates, len(ctx.draw.untaken())
            if limit is not None and limit < left:
                outcome.caps.append(f"uncertainty_candidates={limit}: scored {limit} of {left} pool examples")
            gold = _buy_uncertain_gold(ctx, predict, plan.gold_stage.total)
        else:
            gold = ctx.draw.take(plan.gold_stage.total)
        train("gold", gold, gold.labels.astype("float32"), plan.gold_stage.n_val)

    outcome.test_scores = scores(ctx.test.texts)
    outcome.threshold = prior_threshold(scores(unlabeled_sample(ctx)), ctx.draw.pool.positive_rate)
    return outcome
