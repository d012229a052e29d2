"""run_trial: one elicitation trial from spec to metrics, with no database or queue in sight."""

from __future__ import annotations

import time

import numpy as np

from .budget import plan_labels
from .methods import METHOD_RUNNERS, TrialContext
from .methods.context import LabelDraw
from .metrics import accuracy, auroc
from .models import resolve_model
from .runtime import library_versions, pick_runtime, seed_everything
from .spec import TrialResult, TrialSpec
from .tasks import Task, get_task
from .training.loop import ProgressCallback
from .weak_labels import weak_labels


def run_trial(spec: TrialSpec, progress: ProgressCallback | None = None, task: Task | None = None) -> TrialResult:
    """Train (or prompt) the strong model on the spec's labels and score it on the task's test set.

    Raises AllocationError (budget.py) or ModelSpecError (models.py) before any training when the
    spec cannot run; the same spec and seed give the same result on the CPU.
    """
    started = time.perf_counter()
    task = task or get_task(spec.task)
    model = resolve_model(spec.model)
    plan = plan_labels(spec, model_is_causal=model.is_causal)
    pool = weak_labels(task, spec.weak_labeler).pool
    test = task.test if spec.params.n_test is None else task.test.take(np.arange(min(spec.params.n_test, len(task.test))))

    seed_everything(spec.seed)
    rng = np.random.default_rng(spec.seed)
    runtime = pick_runtime()
    ctx = TrialContext(
        spec=spec,
        plan=plan,
        model=model,
        runtime=runtime,
        draw=LabelDraw(pool, rng),
        test=test,
        rng=rng,
        progress=progress,
    )
    outcome = METHOD_RUNNERS[spec.method](ctx)
    test_auroc = auroc(test.labels, outcome.test_probs)
    # Two fixed halves: a search that picks on one half can report the other without optimism.
    half = len(test) // 2
    return TrialResult(
        spec=spec,
        key=spec.key(),
        test_accuracy=accuracy(test.labels, outcome.test_probs),
        test_auroc=float("nan") if test_auroc is None else test_auroc,
        n_test=len(test),
        selection_accuracy=accuracy(test.labels[:half], outcome.test_probs[:half]),
        holdout_accuracy=accuracy(test.labels[half:], outcome.test_probs[half:]),
        stages=outcome.stages,
        weak_label_accuracy=outcome.weak_label_accuracy(),
        labels_used=plan.as_dict(),
        device=runtime.label,
        versions=library_versions(),
        wall_s=time.perf_counter() - started,
    )
