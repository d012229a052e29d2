"""The engine version's fingerprint: a tiny fixed trial's result, pinned per ENGINE_VERSION.

Trials are keyed by their spec and the engine version; the service serves only the current version's
trials. A change to training (the loop, its stopping rule, a loss, how weak targets are made, how
scores are read) that forgets to bump ENGINE_VERSION would serve trials of the old engine as if the
new one had trained them. This test notices: the trial below exercises both stages, validation, the
cold start, patience in examples and a restart, and its digest is pinned for the current version.
"""

from __future__ import annotations

import hashlib
import json

import torch
import transformers

from worker.engine import TrialSpec, run_trial
from worker.engine.spec import BINARY_SAME_SINCE, ENGINE_VERSION

# Pinned digests, one per engine version, on this project's pinned torch (scripts/install.sh), fp32.
FINGERPRINTS = {
    2: "2ce65bbe4f6e3586",
    3: "2ce65bbe4f6e3586",  # the tiny trial never stops at a new best, so version 3 trains it as 2 did
    4: "2ce65bbe4f6e3586",  # 4 changed bf16's attention kernel only; this trial is fp32
    5: "2ce65bbe4f6e3586",  # 5 changed tasks of more than two classes only (spec.BINARY_SAME_SINCE)
    6: "f46f17ece21d9186",  # 6: gold labels in their own order, validation the last labels a stage bought
}
PINNED_ON = {"torch": "2.13.0"}

SPEC = dict(
    task="cities", method="seq_sft", n_weak=40, n_gold=20, seed=3, weak_labeler="bow", recipe="fast",
    params=dict(precision="fp32", n_test=64, max_length=32, min_val_labels=0, eval_every=1,
                cold_start_examples=64, patience_examples=32, max_examples_per_stage=256, fixed_schedule_examples=64),
)


def fingerprint(result) -> str:
    what = {
        "correct": result.test_correct,
        "threshold": round(result.threshold, 4),
        "stages": [(s.name, s.rule, s.steps, s.best_step, None if s.best_val_auroc is None else round(s.best_val_auroc, 4),
                    s.stopped_early, s.still_improving, s.cold_start_examples, s.restarts) for s in result.stages],
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def test_training_changes_bump_the_engine_version():
    result = run_trial(TrialSpec(**SPEC))
    assert result.spec.engine_version == ENGINE_VERSION
    assert ENGINE_VERSION in FINGERPRINTS, (
        f"ENGINE_VERSION is {ENGINE_VERSION} but no fingerprint is pinned for it: pin {fingerprint(result)!r} in "
        "FINGERPRINTS (tests/engine/test_engine_fingerprint.py)"
    )
    got = fingerprint(result)
    assert got == FINGERPRINTS[ENGINE_VERSION], (
        f"a tiny fixed trial now trains differently (fingerprint {got}, pinned {FINGERPRINTS[ENGINE_VERSION]} for "
        f"engine version {ENGINE_VERSION}). If training or scoring changed on purpose, bump ENGINE_VERSION in "
        "worker/engine/spec.py (stored trials of the old engine then stop being served as current) and pin the "
        "new fingerprint for it; set spec.BINARY_SAME_SINCE to the new version too. If only a library changed "
        f"(pinned on torch {PINNED_ON['torch']}; here torch "
        f"{torch.__version__}, transformers {transformers.__version__}), check that it changes no result that "
        "matters, then re-pin."
    )


def test_binary_trials_are_carried_forward_only_from_versions_that_train_them_alike():
    # spec.carried_forward restates a two-class trial of BINARY_SAME_SINCE or later as the current
    # engine's: every version from there on must pin the same digest.
    assert {FINGERPRINTS.get(v) for v in range(BINARY_SAME_SINCE, ENGINE_VERSION + 1)} == {FINGERPRINTS[ENGINE_VERSION]}


# The same for a task of more than two classes, whose prediction (per-class biases) and weak targets
# take their own code paths; pinned from version 5, the first whose K-class trials are served.
MULTICLASS_FINGERPRINTS = {5: "65f03232b1089ac5", 6: "d69d393d7890afa5"}
MULTICLASS_SPEC = dict(SPEC, task="word_categories", method="logconf_sft", seed=1)


def test_multiclass_training_changes_bump_the_engine_version():
    result = run_trial(TrialSpec(**MULTICLASS_SPEC))
    what = {
        "correct": result.test_correct,
        "class_biases": [round(b, 3) for b in result.class_biases],
        "stages": [(s.name, s.rule, s.steps, s.best_step, None if s.best_val_auroc is None else round(s.best_val_auroc, 4))
                   for s in result.stages],
    }
    got = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    assert ENGINE_VERSION in MULTICLASS_FINGERPRINTS, (
        f"no K-class fingerprint is pinned for engine version {ENGINE_VERSION}: pin {got!r} in MULTICLASS_FINGERPRINTS")
    assert got == MULTICLASS_FINGERPRINTS[ENGINE_VERSION], (
        f"a tiny fixed trial of five classes now trains or predicts differently (fingerprint {got}, pinned "
        f"{MULTICLASS_FINGERPRINTS[ENGINE_VERSION]} for engine version {ENGINE_VERSION}): bump ENGINE_VERSION "
        "(and set spec.BINARY_SAME_SINCE to it if two-class trials changed too), or re-pin after a library change")
