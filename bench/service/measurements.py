"""The made-up measurements of a seeded trial: its accuracy, which test examples it got right, its
stages, its result as the engine reports it (TrialResult) and its row as the service stores it.

Nothing is trained; everything but the numbers comes from the service's and engine's own code
(`plan_labels` for where each label goes, `pack_correct`, `new_trial_values`), so the rows read
back exactly as trained ones do.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np

from app.allocations.search import Point
from app.db.models import Task
from worker.engine.budget import StagePlan, plan_labels
from worker.engine.metrics import pack_correct
from worker.engine.spec import Method, StageResult, StageRule, TrialResult, TrialSpec

N_TEST = 1000
SEED_WORKER = "bench-seed"
CEILING = {"minilm-l6": 0.70, "smollm2-135m": 0.78}  # accuracy the curve tends to
GOLD_WORTH = {"minilm-l6": 0.15, "smollm2-135m": 1.0}  # what a gold label adds, in effective labels
WEAK_WORTH = 0.35
METHOD_SHIFT = {Method.seq_sft: 0.0, Method.logconf_sft: 0.004, Method.uncertainty_sft: 0.008,
                Method.prompted_sft: -0.006, Method.icl: 0.0}
STEP_S = {"minilm-l6": 0.15, "smollm2-135m": 0.9}  # CPU seconds per optimizer step
WEAK_LABEL_ACCURACY = 0.66  # cities' default weak labels (README)


def expected_accuracy(model: str, point: Point, shift: float = 0.0) -> float:
    """A learning curve concave in log effective labels: near chance on tens of labels, most of the
    way to the model's ceiling by ten thousand (cities' README numbers: MiniLM learns little from
    gold, more from the weak labels). `shift`: what a recipe variant costs (fewer steps train less)."""
    if point.method == Method.icl:
        shots = point.n_weak + point.n_gold
        return 0.5 + 0.06 * (1 - math.exp(-shots / 16)) + 0.02 * point.n_gold / shots
    n_eff = GOLD_WORTH[model] * point.n_gold + WEAK_WORTH * point.n_weak
    rise = 1 - math.exp(-math.log1p(n_eff / 30) / 2.5)
    return 0.5 + (CEILING[model] - 0.5) * rise + METHOD_SHIFT[point.method] + shift


def seed_sd(point: Point) -> float:
    """Seed-to-seed spread: wide on a handful of labels, under a point with thousands."""
    return 0.005 + 0.03 / math.sqrt(1 + (point.n_weak + point.n_gold) / 40)


# Per test example: how often a trial gets it right. Shared by all trials, so that trials agree on
# which examples are easy, as real ones on one test set do (what the paired comparisons read).
EASINESS = np.random.default_rng(0).beta(2.0, 1.2, N_TEST) + 0.05


def test_hits(accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 vector over the test set whose mean is `accuracy` (to 1/N_TEST), easy examples first."""
    k = int(round(np.clip(accuracy, 0.0, 1.0) * N_TEST))
    ranks = np.log(rng.random(N_TEST)) / EASINESS  # weighted sampling without replacement
    hits = np.zeros(N_TEST, dtype=bool)
    hits[np.argpartition(-ranks, k - 1)[:k] if k else []] = True
    return hits


def stage_result(name: str, plan: StagePlan, spec: TrialSpec, auroc: float, follows: bool,
                 rng: np.random.Generator) -> tuple[StageResult, list[str]]:
    """A stage as the engine reports it (steps from the schedule, early stop on some), and its caps."""
    params = spec.params
    validated = plan.n_val > 0
    examples = max(params.max_examples_per_stage, plan.n_train)
    planned = math.ceil(examples / params.batch_size)
    steps = min(planned, params.max_steps_per_stage or planned)
    stopped = validated and steps > 2 * params.eval_every and rng.random() < 0.4
    if stopped:
        steps = int(steps * rng.uniform(0.3, 0.9))
    cut = steps < planned and not stopped
    caps = [f"{name} stage: max_steps_per_stage={params.max_steps_per_stage} cut its schedule from "
            f"{planned} to {steps} steps"] if cut else []
    stage = StageResult(
        name=name, rule=StageRule.early_stopping if validated else StageRule.fixed_schedule,
        n_train=plan.n_train, n_val=plan.n_val, steps=steps, planned_steps=planned,
        examples=steps * params.batch_size,
        start_val_auroc=(float(auroc - rng.uniform(0, 0.05))
                         if follows and params.keep_stage_start and validated else None),
        best_val_auroc=float(min(auroc + rng.normal(0, 0.02), 0.999)) if validated else None,
        best_step=int(rng.integers(0, steps + 1)) if validated else steps,
        stopped_early=stopped, longest_input=int(rng.integers(14, 22)),
        wall_s=round(steps * STEP_S[spec.model] * rng.uniform(0.8, 1.2), 2),
    )
    return stage, caps


def trial_result(spec: TrialSpec, accuracy: float, versions: dict[str, str],
                 rng: np.random.Generator) -> TrialResult:
    """What the engine would report for this spec at about this accuracy (exactly that of its hits)."""
    hits = test_hits(accuracy, rng)
    accuracy = float(hits.mean())
    auroc = float(np.clip(0.5 + 1.6 * (accuracy - 0.5) + rng.normal(0, 0.01), 0.3, 0.999))
    plan = plan_labels(spec)
    stages, caps = [], []
    for name, stage_plan in (("weak", plan.weak_stage), ("gold", plan.gold_stage)):
        if stage_plan.total:
            stage, stage_caps = stage_result(name, stage_plan, spec, auroc, bool(stages), rng)
            stages.append(stage)
            caps += stage_caps
    overhead_s = 60.0 if spec.method == Method.icl else 8.0  # loading, scoring the test set
    # The weak labels bought are a sample of the pool's: their accuracy varies as a proportion's does.
    weak_accuracy = (WEAK_LABEL_ACCURACY + rng.normal(0, math.sqrt(0.22 / spec.n_weak))
                     if spec.n_weak else None)
    return TrialResult(
        spec=spec, key=spec.key(), test_accuracy=accuracy, test_auroc=auroc, n_test=N_TEST,
        test_correct=pack_correct(hits), selection_accuracy=float(hits[: N_TEST // 2].mean()),
        holdout_accuracy=float(hits[N_TEST // 2 :].mean()), stages=stages,
        weak_label_accuracy=None if weak_accuracy is None else float(np.clip(weak_accuracy, 0, 1)),
        labels_used=plan.as_dict(), threshold=float(rng.normal(0, 0.3)),
        accuracy_at_half=float(np.clip(accuracy - abs(rng.normal(0, 0.03)), 0, 1)),
        predicted_positive_rate=float(np.clip(rng.normal(0.5, 0.02), 0, 1)), caps=caps, device="cpu",
        versions=versions, wall_s=round(overhead_s + sum(s.wall_s for s in stages), 2),
    )


def done_trial_values(task: Task, spec: TrialSpec, accuracy: float, versions: dict[str, str],
                      rng: np.random.Generator) -> dict:
    """A done trial's row: new_trial_values, then what claim and finish set on it."""
    from app.trials.cache import done_values, new_trial_values

    ended = done_values(trial_result(spec, accuracy, versions, rng).model_dump(mode="json"))
    finished = ended["finished_at"]
    return {
        **new_trial_values(task, spec), **ended, "worker": SEED_WORKER, "attempts": 1,
        "started_at": finished - timedelta(seconds=ended["wall_s"]), "heartbeat_at": finished,
    }
