"""Budget accounting: where every bought label goes, and which allocations cannot train.

Every label a method uses counts: training, validation (paid for, as in the paper) and in-context
shots. A stage of n labels holds out n_val = max(int(0.2 n), 2) of them for early stopping, unless
that share is below the recipe's `min_val_labels`: then all n train on a fixed schedule (a handful
of validation labels only picks a lucky early step; see training.loop).
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import CAUSAL_ONLY_METHODS, Method, MethodParams, TrialSpec

# The paper's loop needs 2 validation labels (an AUROC needs both classes) and 1 to train on; every
# recipe keeps this floor, so the space of allocations is the same whatever the recipe.
MIN_STAGE_LABELS = 3


class AllocationError(ValueError):
    """The allocation cannot run as asked; the message names the field and the reason."""


@dataclass(frozen=True)
class StagePlan:
    n_train: int
    n_val: int

    @property
    def total(self) -> int:
        return self.n_train + self.n_val


def stage_split(n: int, params: MethodParams | None = None) -> StagePlan:
    """Split a stage's n labels into train and validation (n == 0 skips the stage)."""
    if n == 0:
        return StagePlan(0, 0)
    if params is not None and int(0.2 * n) < params.min_val_labels:
        return StagePlan(n, 0)  # too few to validate on: all of them train
    n_val = max(int(0.2 * n), 2)
    return StagePlan(n - n_val, n_val)


@dataclass(frozen=True)
class LabelPlan:
    """How a trial spends its n_weak and n_gold labels."""

    weak_shots: int = 0
    gold_shots: int = 0
    weak_stage: StagePlan = StagePlan(0, 0)
    gold_stage: StagePlan = StagePlan(0, 0)

    @property
    def n_weak(self) -> int:
        return self.weak_shots + self.weak_stage.total

    @property
    def n_gold(self) -> int:
        return self.gold_shots + self.gold_stage.total

    def as_dict(self) -> dict[str, int]:
        return {
            "weak_shots": self.weak_shots,
            "weak_train": self.weak_stage.n_train,
            "weak_val": self.weak_stage.n_val,
            "gold_shots": self.gold_shots,
            "gold_train": self.gold_stage.n_train,
            "gold_val": self.gold_stage.n_val,
        }


def _check_stage(field: str, n: int, params: MethodParams, what: str = "") -> StagePlan:
    if 0 < n < MIN_STAGE_LABELS:
        raise AllocationError(
            f"{field}={n}{what} is too few to train a stage: a stage needs at least {MIN_STAGE_LABELS} "
            f"labels, or 0 to skip it"
        )
    return stage_split(n, params)


def min_labels(method: Method, n_shots: int = 2) -> int:
    """The fewest labels (weak + gold) the method can run on, for budget checks upstream."""
    return {
        Method.seq_sft: MIN_STAGE_LABELS,
        Method.icl: 1,
        Method.prompted_sft: n_shots + MIN_STAGE_LABELS,
        Method.uncertainty_sft: 2 * MIN_STAGE_LABELS,  # a weak stage to score with, then gold
        Method.logconf_sft: MIN_STAGE_LABELS,
    }[method]


def plan_labels(spec: TrialSpec, model_is_causal: bool | None = None) -> LabelPlan:
    """Check the allocation against the method and say where each label goes.

    Raises AllocationError naming the field and why, before any model is loaded.
    """
    method, n_weak, n_gold, params = spec.method, spec.n_weak, spec.n_gold, spec.params
    if method in CAUSAL_ONLY_METHODS and model_is_causal is False:
        raise AllocationError(f"model={spec.model!r} is an encoder; method {method.value} needs a causal LM")

    if method == Method.icl:
        if n_weak + n_gold == 0:
            raise AllocationError("n_weak + n_gold must be at least 1: icl needs at least one in-context shot")
        if n_weak + n_gold > params.icl_max_shots:
            raise AllocationError(
                f"n_weak + n_gold = {n_weak + n_gold} shots exceeds params.icl_max_shots="
                f"{params.icl_max_shots}: the prompt would not fit the context"
            )
        return LabelPlan(weak_shots=n_weak, gold_shots=n_gold)

    if method == Method.prompted_sft:
        k = params.n_shots
        # The shots are weak-labeled when weak labels are bought, else gold: either way they are paid.
        if n_weak > 0:
            if n_weak < k:
                raise AllocationError(f"n_weak={n_weak} is below the {k} weak labels that prompted_sft's shots need")
            plan = LabelPlan(
                weak_shots=k,
                weak_stage=_check_stage("n_weak", n_weak - k, params, f" (after {k} shots)"),
                gold_stage=_check_stage("n_gold", n_gold, params),
            )
        else:
            if n_gold < k:
                raise AllocationError(f"n_gold={n_gold} is below the {k} labels that prompted_sft's shots need")
            plan = LabelPlan(gold_shots=k, gold_stage=_check_stage("n_gold", n_gold - k, params, f" (after {k} shots)"))
        if plan.weak_stage.total + plan.gold_stage.total == 0:
            raise AllocationError("nothing left to train on after the shots: raise n_weak or n_gold")
        return plan

    weak_stage = _check_stage("n_weak", n_weak, params)
    gold_stage = _check_stage("n_gold", n_gold, params)
    if method in (Method.logconf_sft, Method.uncertainty_sft) and n_weak == 0:
        raise AllocationError(f"n_weak=0: method {method.value} needs a weak stage (n_weak >= {MIN_STAGE_LABELS})")
    if method == Method.uncertainty_sft and n_gold == 0:
        raise AllocationError(f"n_gold=0: uncertainty_sft buys gold labels (n_gold >= {MIN_STAGE_LABELS})")
    if weak_stage.total + gold_stage.total == 0:
        raise AllocationError("n_weak and n_gold are both 0: there is nothing to train on")
    return LabelPlan(weak_stage=weak_stage, gold_stage=gold_stage)
