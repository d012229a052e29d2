"""What a trial is asked to do (TrialSpec) and what it reports (TrialResult).

A trial is cost-agnostic: the same spec answers every cost assumption, so its key (a hash of the
spec with every default filled in) is what the service stores and deduplicates on.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .precision import Precision, default_precision
from .tasks import task_version


class Method(StrEnum):
    seq_sft = "seq_sft"  # weak stage, then gold stage
    icl = "icl"  # few-shot in-context learning on the base causal LM, no training
    prompted_sft = "prompted_sft"  # seq_sft with a few-shot weak prefix on every input
    uncertainty_sft = "uncertainty_sft"  # weak stage, then gold labels bought where the model is unsure
    logconf_sft = "logconf_sft"  # seq_sft with the log-confidence auxiliary loss in the weak stage


# Methods that read a causal LM's next-token logits and so refuse an encoder.
CAUSAL_ONLY_METHODS = frozenset({Method.icl})

# Methods whose weak stage is another's: uncertainty sampling changes only how gold is bought, so
# at one n_weak and seed the two train the same weak stage (the weak-stage store shares it).
_WEAK_STAGE_OF = {Method.uncertainty_sft: Method.seq_sft}


def weak_stage_method(method: Method | str) -> Method:
    """The method whose weak stage `method` trains."""
    return _WEAK_STAGE_OF.get(Method(method), Method(method))


class Recipe(StrEnum):
    """A named set of training settings; a trial's params are its recipe's, plus any overrides."""

    paper = "paper"  # the paper's settings and its exact loop (Mallen & Belrose's public code)
    fast = "fast"  # stages that can decline and small stages that really train, in fewer steps


# What this engine does with a spec: bumped whenever a change alters what a trial trains or how it is
# scored (the training loop, schedules, stopping rules, losses, weak targets, scoring, arithmetic).
# It is part of every trial's key, and the service serves only trials of the current version as
# results (older ones stay stored, as trials of an older task version do). Forgetting the bump
# fails tests/engine/test_engine_fingerprint.py, which pins a tiny trial's result per version.
# 1: every trial stored before the version existed. 2: stages trained until validation stops improving,
# with a cold start and restarts (issue 27), calibrated weak labels, bf16 on CPUs that have it (issue 28).
# 3: patience in examples never stops a stage at an evaluation that is its best so far.
# 4: bf16 on a CPU trains with eager attention, not SDPA (runtime.Runtime.attention): 2.4x faster steps,
#    other rounding; fp32 trials train as in 3.
# 5: tasks of more than two classes: the per-class biases that set predictions (and centre weak labels,
#    and harden log-confidence targets) are fitted by class_balance.balancing_biases; the rule before
#    could swing between classes and end far from the balance. Binary tasks train and score as in 4.
# 6: a seed's labels are one growing set (issue 27): gold labels are bought in an order of their own
#    (methods.context.LabelDraw), and a stage validates on the last labels it bought, not the first, so
#    a larger budget trains on every label a smaller one did. In version 5 a seed could score 0.83 on
#    64 gold labels and 0.72 on 256, whose validation had taken 51 of those 64.
ENGINE_VERSION = 6
# The oldest version whose trials of a two-class task this engine reproduces exactly (the fingerprint
# test pins one digest for both): such a trial is carried forward, not trained again (carried_forward).
# Version 6 draws other labels for nearly every trial, so none before it is carried.
BINARY_SAME_SINCE = 6

# Seeds are stored in 32-bit integer columns.
MAX_SEED = 2**31 - 1
# Upper bounds on what a request may ask of a stage: far above anything a real run uses (the
# paper's stage sees 30,000 examples), low enough that one request cannot hold a worker for days.
MAX_EXAMPLES_PER_STAGE = 1_000_000
MAX_STEPS = 1_000_000
MAX_BATCH = 4096
MAX_PATIENCE = 1000
MAX_TOKENS = 32_768
MAX_SHOTS = 256
MAX_EXAMPLES = 10_000_000  # examples scored (test, uncertainty candidates): more than any stored task


class MethodParams(BaseModel):
    """Hyperparameters; the defaults follow the paper's public code unless a comment says otherwise.

    Every field has an upper bound (see the constants above) and floats must be finite.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    lr: float = Field(5e-4, gt=0, le=1, description="AdamW learning rate for LoRA and head")
    batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    max_examples_per_stage: int = Field(
        30_000, ge=1, le=MAX_EXAMPLES_PER_STAGE, description="examples seen per stage at most (epochs = max(this / n, 1))"
    )
    max_steps_per_stage: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="hard cap on optimizer steps (tests, demos)"
    )
    warmup_steps: int = Field(40, ge=0, le=MAX_STEPS, description="capped at one epoch, at least 2")
    eval_every: int = Field(50, ge=1, le=MAX_STEPS, description="capped at one epoch")
    patience: int = Field(
        4, ge=1, le=MAX_PATIENCE, description="evaluations without a gain of min_delta before stopping"
    )
    min_delta: float = Field(0.01, ge=0, le=1, description="validation AUROC gain that counts as progress")
    max_length: int | None = Field(
        None, ge=8, le=MAX_TOKENS,
        description="tokens per input, prefix included (None: whatever the model takes, no truncation)",
    )
    eval_batch_size: int = Field(
        64, ge=1, le=MAX_BATCH,
        description="evaluation batch on the CPU; a GPU uses at least LABELMIX_CUDA_EVAL_BATCH_SIZE",
    )
    n_shots: int = Field(2, ge=1, le=MAX_SHOTS, description="prompted_sft: weak-labeled shots in every input's prefix")
    icl_max_shots: int = Field(64, ge=1, le=MAX_SHOTS, description="icl: most shots one prompt may hold")
    logconf_aux_weight: float = Field(0.5, ge=0, le=1)
    logconf_warmup_frac: float = Field(0.1, gt=0, le=1, description="share of the stage to ramp the aux weight in")
    uncertainty_candidates: int | None = Field(
        None, ge=1, le=MAX_EXAMPLES,
        description="uncertainty_sft: score this many random pool examples (None: the whole pool)",
    )
    n_test: int | None = Field(
        None, ge=2, le=MAX_EXAMPLES, description="evaluate on the first n test examples (None: all)"
    )
    keep_stage_start: bool = Field(
        False,
        description="evaluate before the first step of a stage that follows another and keep its starting "
        "state as a candidate (a first stage starts from a random head: nothing to keep)",
    )
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine",
        description="after warmup: cosine decay to 0 at the schedule's end (the paper), or constant for stages "
        "that validate (their validation decides when they end: there is no end to decay to); a stage too small "
        "to validate always decays over its fixed schedule",
    )
    cold_start_examples: int = Field(
        0, ge=0, le=MAX_EXAMPLES_PER_STAGE,
        description="a validated stage that starts at chance (a random head, or a start whose validation AUROC "
        "is not clearly above 0.5) cannot stop early before it has seen this many examples",
    )
    patience_examples: int = Field(
        0, ge=0, le=MAX_EXAMPLES_PER_STAGE,
        description="when above 0, patience counts examples, not evaluations: stop after this many (at least "
        "an epoch) without a gain of min_delta",
    )
    max_restarts: int = Field(
        0, ge=0, le=10,
        description="a validated stage that started at chance and ended without its validation AUROC clearly "
        "above 0.5 is trained again from a freshly drawn adapter and head, up to this many times; the best "
        "attempt by validation is kept",
    )
    fixed_schedule_examples: int | None = Field(
        None, ge=1, le=MAX_EXAMPLES_PER_STAGE,
        description="examples a stage too small to validate trains on (at least an epoch, at most 64); None: "
        "max_examples_per_stage",
    )
    precision: Precision = Field(
        default_factory=default_precision,
        description="arithmetic the trial trains and scores in: bf16 (autocast on a CPU, bf16 base weights on "
        "a GPU) or fp32; by default LABELMIX_PRECISION, which is bf16 where the hardware has it",
    )
    min_val_labels: int = Field(
        0,
        ge=0,
        le=MAX_EXAMPLES_PER_STAGE,
        description="a stage whose 20% validation share would hold fewer labels trains on all of them for "
        "its whole schedule, without early stopping (0: always validate, as the paper does)",
    )


# What each recipe sets; everything else keeps MethodParams' defaults, which are the paper's.
RECIPE_PARAMS: dict[Recipe, dict] = {
    Recipe.paper: {},
    # Every stage trained until its validation stops improving (engine version 2; issue 27): with a
    # fixed cap of 2,048 examples, 250-1,000 gold labels from a random head failed on half the seeds,
    # stopped or decayed before they began to learn.
    Recipe.fast: {
        "lr": 1e-3,
        "lr_schedule": "constant",
        "eval_every": 16,
        "keep_stage_start": True,
        # AUROC on fewer than 50 labels moves by 0.07 or more from sampling alone: too coarse to stop on.
        "min_val_labels": 50,
        # No stop before a stage starting at chance has seen this many examples: word_sentiment's 250-500
        # gold stages began to learn after 700-2,200.
        "cold_start_examples": 4096,
        "patience_examples": 2048,  # and at least an epoch
        # A hard bound, not a schedule: a stage that reaches it still improving says so (caps).
        "max_examples_per_stage": 32_768,
        # A stage too small to validate (under 250 labels) trains this long, decaying: at least an epoch.
        "fixed_schedule_examples": 4096,
        # The demo's 256 gold labels (seed 0) sat at chance through their whole cold start (best validation
        # AUROC 0.62 of 51 labels, test 0.52): from another draw of adapter and head, stages learn.
        "max_restarts": 2,
    },
}
DEFAULT_RECIPE = Recipe.fast


def recipe_params(recipe: Recipe | str, overrides: dict | None = None) -> MethodParams:
    """The recipe's params with `overrides` on top (raises ValidationError naming a bad one)."""
    return MethodParams(**{**RECIPE_PARAMS[Recipe(recipe)], **(overrides or {})})


class TrialSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    model: str = "minilm-l6"
    method: Method = Method.seq_sft
    n_weak: int = Field(0, ge=0, description="weak labels bought (training, validation and shots)")
    n_gold: int = Field(0, ge=0, description="gold labels bought (training, validation and shots)")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    weak_labeler: str = Field("default", description="which weak labels to buy; see worker.engine.weak_labels")
    recipe: Recipe = DEFAULT_RECIPE
    params: MethodParams = MethodParams()
    task_version: int = Field(
        1, ge=1, description="version of the task's data: a rebuilt built-in task gets new trial keys"
    )
    engine_version: int = Field(
        ENGINE_VERSION, ge=1, le=ENGINE_VERSION,
        description="version of the training engine (spec.ENGINE_VERSION): only the current one is run and served",
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data):
        """Fill params from the recipe under the given overrides, and the task's current version.

        Params given as a MethodParams count only for the fields set on it, so
        `params=MethodParams(lr=1e-3)` means "the recipe, with lr 1e-3".
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        params = data.get("params") or {}
        if isinstance(params, MethodParams):
            params = params.model_dump(exclude_unset=True)
        data["params"] = {**RECIPE_PARAMS[Recipe(data.get("recipe", DEFAULT_RECIPE))], **params}
        if "task_version" not in data and isinstance(data.get("task"), str):
            data["task_version"] = task_version(data["task"])
        return data

    def key(self) -> str:
        """A stable hash of everything that can change the result."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def cost(self, weak_cost: float, gold_cost: float) -> float:
        # The engine imports nothing from the service, so not app.stats.prices; the same formula.
        return self.n_weak * weak_cost + self.n_gold * gold_cost


class StageRule(StrEnum):
    early_stopping = "early_stopping"  # validated every eval_every steps; the best state is restored
    fixed_schedule = "fixed_schedule"  # too few labels to validate: all train for the whole schedule


class StageResult(BaseModel):
    name: str  # "weak" or "gold"
    rule: StageRule = StageRule.early_stopping
    n_train: int
    n_val: int
    steps: int
    planned_steps: int | None = Field(None, description="the schedule's steps before max_steps_per_stage")
    examples: int
    start_val_auroc: float | None = Field(None, description="validation AUROC before the first step")
    best_val_auroc: float | None
    best_step: int = Field(description="the step whose state the stage kept: 0 is its starting state")
    stopped_early: bool
    still_improving: bool = Field(
        False, description="a validated stage that ran to its bound with patience left: it might have gone on "
        "gaining, so its trial measures the bound as much as the labels",
    )
    cold_start_examples: int = Field(0, description="examples the stage had to see before it could stop (0: it "
                                     "started above chance, or its recipe has no cold start)")
    restarts: int = Field(0, description="fresh starts after attempts that never left chance (params.max_restarts); "
                          "the stage's other fields describe the attempt it kept, its wall_s all of them")
    truncated_inputs: int = Field(0, description="training and validation inputs cut to max_length")
    longest_input: int = Field(0, description="tokens in the stage's longest input, before any cut")
    wall_s: float
    reused: bool = Field(
        False, description="restored from an earlier trial's identical stage (weak-stage store), not trained again"
    )


class ProgressEvent(BaseModel):
    stage: str
    step: int
    total_steps: int
    val_auroc: float | None = None


class TrialResult(BaseModel):
    spec: TrialSpec
    key: str
    test_accuracy: float
    test_auroc: float
    n_test: int
    test_correct: str | None = Field(
        None,
        description="which test examples the trial got right, in test-set order: base64 of packed bits "
        "(metrics.unpack_correct); trials on one task version share the order, so they pair",
    )
    learned: bool | None = Field(
        None, description="whether the trial learned at all: its test AUROC's 95% interval (Hanley-McNeil) lies "
        "above 0.5. A seed that learned nothing (a stage that never left its cold start, or memorized its labels) "
        "is a failed seed, not a low score (None: stored before engine version 2)",
    )
    selection_accuracy: float = Field(description="accuracy on the test set's first half: for choosing")
    holdout_accuracy: float = Field(description="accuracy on its second half: for reporting, never for choosing")
    stages: list[StageResult]
    weak_label_accuracy: float | None = Field(
        None, description="accuracy of the weak labels this trial used, against their gold labels"
    )
    labels_used: dict[str, int] = Field(description="where each bought label went: train, val, shots")
    threshold: float | None = Field(
        None,
        description="log-odds above which a prediction is positive: the quantile of unlabeled pool "
        "scores at the task's class balance (see methods.context.prior_threshold)",
    )
    accuracy_at_half: float | None = Field(None, description="test accuracy with the head's own 0.5 cut (K > 2 "
                                           "classes: its own most probable class, no biases)")
    predicted_positive_rate: float | None = Field(None, description="share of test examples predicted positive "
                                                  "(binary tasks)")
    macro_f1: float | None = Field(None, description="F1 averaged over the classes, each counting the same (None: "
                                   "stored before it was recorded)")
    class_biases: list[float] | None = Field(
        None, description="tasks of K > 2 classes: the bias added to each class's log-probability before the most "
        "probable class is predicted, so that unlabeled pool data is predicted in the task's class balance "
        "(methods.context.prior_biases; a binary task's threshold does the same)",
    )
    predicted_class_rates: list[float] | None = Field(
        None, description="tasks of K > 2 classes: each class's share of the test predictions")
    caps: list[str] = Field(
        default_factory=list, description="what the params cut short (steps, inputs, test or pool examples)"
    )
    pool_scores_reused: bool = Field(
        False, description="uncertainty_sft: the weak stage's scores of the pool were read from the weak-stage "
        "store (computed by an earlier trial with the same weak stage), not computed again",
    )
    pool_scoring_s: float | None = Field(
        None, description="uncertainty_sft: seconds spent scoring the pool with the weak-trained model (or reading "
        "the scores from the store); with the stages' wall_s it says where a trial's time went",
    )
    device: str
    precision: Precision = Field(
        Precision.fp32, description="the arithmetic the trial ran in (its spec's params.precision); fp32 for "
        "trials stored before precision was recorded",
    )
    machine: str | None = Field(
        None, description="the hardware kind that trained it: the GPU's name, or the CPU's model, family and bf16 "
        "flags (precision.cpu_kind). A bf16 trial can score a little differently on another kind; fp32 trials "
        "agree across CPU kinds (docs/engine.md). None: stored before it was recorded",
    )
    versions: dict[str, str]
    wall_s: float


def carried_forward(spec: TrialSpec, result: dict, n_classes: int) -> tuple[TrialSpec, dict] | None:
    """A done trial of an older engine that this one reproduces exactly, restated as this engine's
    (its spec, key and result's spec): a two-class trial from BINARY_SAME_SINCE on. None for any
    other trial, which stays its own engine's and is trained again when asked for."""
    if n_classes != 2 or not BINARY_SAME_SINCE <= spec.engine_version < ENGINE_VERSION:
        return None
    current = TrialSpec(**{**spec.model_dump(mode="json"), "engine_version": ENGINE_VERSION})
    return current, {**result, "spec": current.model_dump(mode="json"), "key": current.key()}
