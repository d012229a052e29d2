"""The bf16-vs-fp32 parity report (bench.service.precision_parity): its paired differences and intervals,
and when it says two arms give the same answer. The trials themselves are real engine runs in
`python -m bench.service.precision_parity` (docs/bench/precision-parity.json); here the report is fed
rows written as that command journals them, with per-example records, so the arithmetic is checked
against numbers worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.service.precision_parity import (
    _job_id,
    complete_points,
    journaled,
    paired_difference,
    plan_jobs,
    report,
)
from worker.engine.metrics import pack_correct
from worker.engine.spec import ENGINE_VERSION

N_TEST = 200


def rows(n_weak: int, n_gold: int, precision: str, accuracies: list[float], budget: float = 64.0) -> list[dict]:
    out = []
    for seed, accuracy in enumerate(accuracies):
        correct = np.zeros(N_TEST, dtype=bool)
        correct[: round(accuracy * N_TEST)] = True
        out.append({"task": "t", "budget": budget, "weak_share": 0.0 if n_weak == 0 else 1.0 if n_gold == 0 else 0.5,
                    "method": "seq_sft", "n_weak": n_weak, "n_gold": n_gold, "seed": seed, "precision": precision,
                    "precision_ran": precision, "test_accuracy": accuracy, "n_test": N_TEST,
                    "test_correct": pack_correct(correct), "learned": True, "wall_s": 1.0})
    return out


def test_the_difference_is_paired_by_seed_with_a_t_interval():
    fp32 = rows(0, 64, "fp32", [0.80, 0.70, 0.90])
    bf16 = rows(0, 64, "bf16", [0.81, 0.72, 0.90])  # differences .01 .02 .00
    d = paired_difference(fp32, bf16)
    assert d["per_seed"] == [0.01, 0.02, 0.0]
    assert d["difference"] == pytest.approx(0.01)
    half = 2.919986 * 0.01 / math.sqrt(3)  # t(0.95, df 2) x sd of the differences / sqrt(3)
    assert (d["low"], d["high"]) == (pytest.approx(0.01 - half, abs=1e-4), pytest.approx(0.01 + half, abs=1e-4))
    assert d["within_0.01"]
    assert not paired_difference(fp32, rows(0, 64, "bf16", [0.84, 0.73, 0.93]))["within_0.01"]


def test_answers_agree_when_the_picks_match_or_tie_and_not_when_one_arm_clearly_prefers_another():
    gold = rows(0, 64, "fp32", [0.80, 0.81, 0.79]) + rows(0, 64, "bf16", [0.80, 0.81, 0.79])
    weak_close = rows(640, 0, "fp32", [0.79, 0.80, 0.80]) + rows(640, 0, "bf16", [0.81, 0.82, 0.80])
    result = report(gold + weak_close)
    [answer] = result["answers"]
    assert answer["fp32_pick"]["n_gold"] == 64 and answer["bf16_pick"]["n_weak"] == 640
    assert not answer["same_point"] and answer["answers_agree"]  # 200 test examples cannot split them
    weak_far = rows(640, 0, "fp32", [0.60, 0.61, 0.60]) + rows(640, 0, "bf16", [0.95, 0.96, 0.95])
    result = report(gold + weak_far)
    assert not result["answers"][0]["answers_agree"] and not result["answers_agree"]
    assert not result["all_within_0.01"]


def test_every_point_and_seed_is_planned_in_both_precisions_next_to_each_other():
    jobs = plan_jobs(["cities"], [64.0], [0.0, 1.0], [0, 1], "fast")
    assert [j["precision"] for j in jobs] == ["fp32", "bf16"] * 4
    assert len({_job_id(j) for j in jobs}) == 8
    assert {(j["n_weak"], j["n_gold"]) for j in jobs} == {(0, 64), (640, 0)}


def test_a_journal_row_of_another_engine_is_not_taken_for_this_engines_trial(tmp_path):
    jobs = plan_jobs(["cities"], [64.0], [0.0], [0], "fast")
    assert {j["engine_version"] for j in jobs} == {ENGINE_VERSION}
    trained = [{**j, "test_accuracy": 0.5, "n_test": N_TEST, "learned": True, "wall_s": 1.0,
                "precision_ran": j["precision"]} for j in jobs]
    older = [{**row, "engine_version": ENGINE_VERSION - 1} for row in trained]
    # journals written before rows named their engine
    unnamed = [{k: v for k, v in row.items() if k != "engine_version"} for row in trained]
    journal = tmp_path / "parity.jsonl"
    journal.write_text("".join(json.dumps(row) + "\n" for row in older + unnamed))
    assert complete_points(jobs, journaled(journal)) == []
    with journal.open("a") as out:
        out.writelines(json.dumps(row) + "\n" for row in trained)
    assert complete_points(jobs, journaled(journal)) == trained
