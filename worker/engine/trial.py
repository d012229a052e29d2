"""run_trial: one elicitation trial from spec to metrics, with no database or queue in sight."""

from __future__ import annotations

import time

import numpy as np

from .budget import plan_labels
from .methods import METHOD_RUNNERS, MethodOutcome, TrialContext
from .methods.context import trial_draw
from .metrics import above_chance, accuracy, auroc, correct, macro_f1, pack_correct, predicted_classes
from .models import resolve_model
from .runtime import library_versions, pick_runtime, seed_everything
from .spec import StageResult, TrialResult, TrialSpec
from .tasks import Task, get_task
from .training.loop import ProgressCallback, TimeLimit, checked_between_steps
from .weak_labels import weak_labels


def _stage_caps(stages: list[StageResult], spec: TrialSpec) -> list[str]:
    caps = []
    for stage in stages:
        if stage.planned_steps:
            unseen = max(stage.n_train - stage.examples, 0)
            caps.append(
                f"{stage.name} stage: max_steps_per_stage={spec.params.max_steps_per_stage} cut its schedule "
                f"from {stage.planned_steps} to {stage.steps} steps"
                + (f"; {unseen} of its {stage.n_train} training labels were never seen" if unseen else "")
            )
        if stage.still_improving:
            # Not a cut, but the bound may be what limits the stage: say so rather than stay silent.
            caps.append(
                f"{stage.name} stage: still improving when its schedule ended after {stage.steps} steps (best at "
                f"step {stage.best_step}; max_examples_per_stage={spec.params.max_examples_per_stage})"
            )
        if stage.truncated_inputs:
            caps.append(
                f"{stage.name} stage: max_length={spec.params.max_length or 'the model limit'} cut {stage.truncated_inputs} "
                f"encoded inputs (the longest had {stage.longest_input} tokens)"
            )
    return caps


def _test_caps(spec: TrialSpec, n_task_test: int) -> list[str]:
    n = spec.params.n_test
    if n is not None and n < n_task_test:
        return [f"n_test={n}: scored on {n} of the task's {n_task_test} test examples"]
    return []


def prepare_trial(spec: TrialSpec, progress: ProgressCallback | None = None, task: Task | None = None) -> TrialContext:
    """Check the spec, seed everything from it and gather what its method needs.

    Raises AllocationError (budget.py) or ModelSpecError (models.py) before any training when the
    spec cannot run. Seeds torch here: the method's fresh adapter and head draw from it next.
    """
    task = task or get_task(spec.task)
    model = resolve_model(spec.model)
    plan = plan_labels(spec, model_is_causal=model.is_causal)
    pool = weak_labels(task, spec.weak_labeler).pool
    test = task.test if spec.params.n_test is None else task.test.take(np.arange(min(spec.params.n_test, len(task.test))))

    seed_everything(spec.seed)
    rng = np.random.default_rng(spec.seed)
    return TrialContext(
        spec=spec,
        plan=plan,
        model=model,
        runtime=pick_runtime(spec.params.precision),
        draw=trial_draw(pool, spec.seed, rng),
        test=test,
        rng=rng,
        progress=progress,
        n_task_test=len(task.test),
        classes=task.classes,
    )


def trial_result(ctx: TrialContext, outcome: MethodOutcome, wall_s: float) -> TrialResult:
    """Score the method's test predictions and report the trial."""
    spec, test = ctx.spec, ctx.test
    scores, cut = outcome.test_scores, outcome.threshold
    test_auroc = auroc(test.labels, scores)
    binary = ctx.n_classes == 2
    predicted = predicted_classes(scores, cut)
    # Two fixed halves: a search that picks on one half can report the other without optimism.
    half = len(test) // 2
    return TrialResult(
        spec=spec,
        key=spec.key(),
        test_accuracy=accuracy(test.labels, scores, cut),
        test_correct=pack_correct(correct(test.labels, scores, cut)),
        test_auroc=float("nan") if test_auroc is None else test_auroc,
        learned=above_chance(test_auroc, test.labels, n_classes=ctx.n_classes),
        n_test=len(test),
        selection_accuracy=accuracy(test.labels[:half], scores[:half], cut),
        holdout_accuracy=accuracy(test.labels[half:], scores[half:], cut),
        threshold=float(cut) if binary else None,
        accuracy_at_half=accuracy(test.labels, scores, 0.0),  # log-odds 0: probability 0.5 (K > 2: no biases)
        predicted_positive_rate=float(predicted.mean()) if binary else None,
        macro_f1=macro_f1(test.labels, scores, cut, ctx.n_classes),
        class_biases=None if binary else [float(b) for b in cut],
        predicted_class_rates=None if binary else (np.bincount(predicted, minlength=ctx.n_classes) / len(test)).tolist(),
        caps=[*_stage_caps(outcome.stages, spec), *outcome.caps, *_test_caps(spec, ctx.n_task_test)],
        stages=outcome.stages,
        pool_scores_reused=outcome.pool_scores_reused,
        pool_scoring_s=outcome.pool_scoring_s,
        weak_label_accuracy=outcome.weak_label_accuracy(),
        labels_used=ctx.plan.as_dict(),
        device=ctx.runtime.label,
        precision=ctx.runtime.precision,
        machine=ctx.runtime.machine,
        versions=library_versions(),
        wall_s=wall_s,
    )


def run_trial(
    spec: TrialSpec, progress: ProgressCallback | None = None, task: Task | None = None, time_limit_s: float | None = None
) -> TrialResult:
    """Train (or prompt) the strong model on the spec's labels and score it on the task's test set.

    Raises AllocationError (budget.py) or ModelSpecError (models.py) before any training when the
    spec cannot run; the same spec and seed give the same result on the CPU, alone or grouped
    (worker.engine.group), on a resident model or a fresh one, with its weak stage reused or not.
    With `time_limit_s`, raises TimeLimitExceeded at the first training step past it (a worker sets
    its own checks around run_trial instead: training.loop.checked_between_steps).
    """
    started = time.perf_counter()
    checks = (TimeLimit(time_limit_s),) if time_limit_s is not None else ()
    with checked_between_steps(*checks):
        ctx = prepare_trial(spec, progress, task)
        outcome = METHOD_RUNNERS[spec.method](ctx)
    return trial_result(ctx, outcome, time.perf_counter() - started)
