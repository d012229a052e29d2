"""Sequential SFT and its variants: a weak stage, then a gold stage, one adapter throughout.

- seq_sft: both stages on randomly bought labels.
- logconf_sft: the weak stage adds the log-confidence auxiliary loss.
- uncertainty_sft: gold labels are bought for the pool examples the weak-trained model is least sure of.
- prompted_sft: every training and inference input carries a freshly shuffled few-shot weak prefix.

The method is written as `sequential_steps`, a generator that yields each training stage it needs
and receives its result: run alone (`run_sequential_sft`) or beside other trials in one forward
pass (`worker.engine.group`), it is the same code. A weak stage trained before is restored from
the weak-stage store instead of being asked for (see weak_stages.py).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from .. import weak_stages
from ..metrics import above_chance, most_uncertain
from ..prompts import few_shot_prompt, shuffled_shots
from ..resident import fresh_classifier
from ..spec import Method, MethodParams, ProgressEvent, StageResult
from ..tasks import Split
from ..training.classifier import redrawn_state
from ..training.loop import (
    Batcher,
    Formatter,
    ProgressCallback,
    StageData,
    StageRun,
    identity,
    input_limit,
    predict_probs,
    predict_scores,
    train_run,
)
from .context import MethodOutcome, TrialContext, decision_cut, gold_targets, hard, stage_data, unlabeled_sample


@dataclass(frozen=True)
class TrainRequest:
    """A stage the method asks to have trained on its model; everything but the model itself."""

    name: str
    batcher: Batcher
    data: StageData
    params: MethodParams
    rng: np.random.Generator
    use_logconf: bool = False
    progress: ProgressCallback | None = None

    def start(self, model) -> StageRun:
        return StageRun(self.name, model, self.batcher, self.data, self.params, self.rng, self.use_logconf, self.progress)


# Yields the stages to train, is sent each one's result, returns the method's outcome.
MethodSteps = Generator[TrainRequest, StageResult, MethodOutcome]


def _shot_formatter(ctx: TrialContext, outcome: MethodOutcome) -> Formatter:
    """Buy the shots and return a formatter that prefixes k of them, reshuffled, to every input."""
    plan = ctx.plan
    if plan.weak_shots:
        bought = ctx.draw.take_weak(plan.weak_shots)
        outcome.weak_bought.append(bought)
        labels = hard(bought.weak_probs)
    else:
        bought = ctx.draw.take_gold(plan.gold_shots)
        labels = bought.labels
    # The answers as the prompt shows them: a binary task's "0"/"1", or the task's class names.
    shots = [(text, ctx.classes[int(label)]) for text, label in zip(bought.texts, labels)]
    k = ctx.spec.params.n_shots
    return lambda text: few_shot_prompt(shuffled_shots(shots, k, ctx.rng), text)


def _buy_uncertain_gold(ctx: TrialContext, predict, n: int, outcome: MethodOutcome | None = None,
                        store: weak_stages.WeakStageStore | None = None) -> Split:
    """Gold labels for the n candidates with the highest predictive entropy under the current model.

    `store` is the weak stage's, when the model is still exactly that stage: its pool scores are
    read from it, or computed and kept there.
    """
    candidates = ctx.draw.untaken()
    limit = ctx.spec.params.uncertainty_candidates
    if limit is not None and limit < len(candidates):
        candidates = ctx.rng.choice(candidates, limit, replace=False)
    if len(candidates) < n:
        raise ValueError(f"only {len(candidates)} pool examples are left to choose {n} gold labels from")
    started = time.perf_counter()
    probs = store.load_pool_probs(candidates) if store else None
    if outcome is not None:
        outcome.pool_scores_reused = probs is not None
    if probs is None:
        probs = predict([ctx.draw.pool.texts[i] for i in candidates])
        if store:
            store.save_pool_probs(candidates, probs)
    if outcome is not None:
        outcome.pool_scoring_s = time.perf_counter() - started
    chosen = candidates[most_uncertain(probs, n)]
    # Validation comes from the selected examples too: shuffle so it is a fair sample of them.
    return ctx.draw.take_indices(ctx.rng.permutation(chosen))


def _never_left_chance(result: StageResult, data) -> bool:
    """A validated stage that started at chance (it had a cold start) and ended with its best
    validation AUROC not clearly above 0.5: an attempt that learned nothing."""
    return result.rule == "early_stopping" and result.cold_start_examples > 0 and not above_chance(
        result.best_val_auroc, data.val_labels, n_classes=data.n_classes)


def _trained(request: TrainRequest, model, seed_words: list[int]) -> Generator[TrainRequest, StageResult, StageResult]:
    """Train a stage; while an attempt never left chance, train it again from a freshly drawn adapter
    and head (params.max_restarts times at most) and keep the best attempt by validation AUROC.

    Without it, 256 gold labels of the demo (seed 0) sat at chance through their whole cold start and
    the all-gold point scored 0.52 where its neighbours scored 0.86-0.92: a seed's bad draw decided it.
    """
    result = yield request
    kept, wall, attempts = model.trainable_state(), result.wall_s, 0
    while attempts < request.params.max_restarts and _never_left_chance(result, request.data):
        attempts += 1
        seed = int(np.random.SeedSequence([*seed_words, attempts]).generate_state(1)[0])
        model.load_trainable_state(redrawn_state(kept, seed))
        again = yield request
        wall += again.wall_s
        if (again.best_val_auroc or -1.0) > (result.best_val_auroc or -1.0):
            result, kept = again, model.trainable_state()
        else:
            model.load_trainable_state(kept)
    return result.model_copy(update={"restarts": attempts, "wall_s": wall}) if attempts else result


def sequential_steps(ctx: TrialContext, model, tokenizer) -> MethodSteps:
    """The method on `model` (a fresh classifier, or a trial's view of a grouped one)."""
    spec, plan, params = ctx.spec, ctx.plan, ctx.spec.params
    outcome = MethodOutcome(test_scores=None)
    formatter = _shot_formatter(ctx, outcome) if spec.method == Method.prompted_sft else identity
    batcher = Batcher(tokenizer, ctx.runtime, input_limit(params, model.config), formatter)

    def predict(texts):  # probabilities, for uncertainty sampling's entropy
        return predict_probs(model, batcher, texts, ctx.eval_batch_size)

    def scores(texts):  # log-odds, for the test and its threshold: they never saturate
        return predict_scores(model, batcher, texts, ctx.eval_batch_size)

    def stage(name: str, examples: Split, targets, n_val: int, use_logconf: bool = False) -> TrainRequest:
        # Only a trained state is worth keeping: a first stage starts from a random head.
        stage_params = params if outcome.stages else params.model_copy(update={"keep_stage_start": False})
        data = stage_data(examples, targets, n_val)
        return TrainRequest(name, batcher, data, stage_params, ctx.rng, use_logconf, ctx.progress)

    store = None
    if plan.weak_stage.total:
        weak = ctx.draw.take_weak(plan.weak_stage.total)
        outcome.weak_bought.append(weak)
        store = weak_stages.store_for(ctx)
        stored = store.load(model, batcher) if store else None
        if stored is not None:
            outcome.stages.append(stored)
            if ctx.progress:  # the stage is done at once: say so, as its last step would have
                ctx.progress(ProgressEvent(stage="weak", step=stored.steps, total_steps=stored.steps,
                                           val_auroc=stored.best_val_auroc))
        else:
            use_logconf = spec.method == Method.logconf_sft
            request = stage("weak", weak, weak.weak_probs, plan.weak_stage.n_val, use_logconf)
            outcome.stages.append((yield from _trained(request, model, [spec.seed, 1])))
            if store:
                store.save(model, batcher, outcome.stages[-1])

    if plan.gold_stage.total:
        if spec.method == Method.uncertainty_sft:
            limit, left = params.uncertainty_candidates, len(ctx.draw.untaken())
            if limit is not None and limit < left:
                outcome.caps.append(f"uncertainty_candidates={limit}: scored {limit} of {left} pool examples")
            gold = _buy_uncertain_gold(ctx, predict, plan.gold_stage.total, outcome, store)
        else:
            gold = ctx.draw.take_gold(plan.gold_stage.total)
        request = stage("gold", gold, gold_targets(gold), plan.gold_stage.n_val)
        outcome.stages.append((yield from _trained(request, model, [spec.seed, 2])))

    outcome.test_scores = scores(ctx.test.texts)
    outcome.threshold = decision_cut(scores(unlabeled_sample(ctx)), ctx.draw.pool)
    return outcome


def train_alone(steps: MethodSteps, model) -> MethodOutcome:
    """Run a method's steps on its own model, one stage after another."""
    try:
        request = next(steps)
        while True:
            request = steps.send(train_run(request.start(model)))
    except StopIteration as finished:
        return finished.value


def run_sequential_sft(ctx: TrialContext) -> MethodOutcome:
    with fresh_classifier(ctx.model, ctx.runtime, ctx.n_classes) as (classifier, tokenizer):
        return train_alone(sequential_steps(ctx, classifier, tokenizer), classifier)
