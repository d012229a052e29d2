"""The paper's early-stopping rule: stop after `patience` evaluations without a gain of min_delta."""

from __future__ import annotations

import math

import pytest

from worker.engine.training.early_stopping import EarlyStopping


def stop_index(scores, patience=4, min_delta=0.01) -> int | None:
    """The 1-based number of the evaluation after which should_stop first holds (None: never)."""
    stopper = EarlyStopping(patience=patience, min_delta=min_delta)
    for i, score in enumerate(scores, start=1):
        stopper.update(score, step=10 * i)
        if stopper.should_stop:
            return i
    return None


def test_stops_after_exactly_patience_evaluations_without_gain():
    stopper = EarlyStopping(patience=4, min_delta=0.01)
    stopper.update(0.7, step=50)  # the first evaluation is a gain over nothing
    for i, step in enumerate((100, 150, 200)):
        stopper.update(0.7, step)
        assert not stopper.should_stop, f"stopped after {i + 1} evaluations without gain, patience is 4"
    stopper.update(0.7, 250)
    assert stopper.should_stop


@pytest.mark.parametrize("patience", [1, 2, 3, 4, 7])
def test_patience_counts_evaluations(patience):
    assert stop_index([0.6] * 20, patience=patience) == patience + 1


def test_falling_scores_run_out_of_patience():
    assert stop_index([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]) == 5


def test_small_gains_in_a_row_still_run_out_of_patience():
    # Each step gains 0.002: never min_delta over the last gain, even though every score is a new best.
    scores = [0.600, 0.602, 0.604, 0.606, 0.608, 0.610]
    stopper = EarlyStopping(patience=4, min_delta=0.01)
    bests = [stopper.update(s, step=i) for i, s in enumerate(scores[:5])]
    assert bests == [True] * 5, "every higher score is still the best state to restore"
    assert stopper.should_stop
    assert stopper.best_step == 4 and stopper.best_score == pytest.approx(0.608)


def test_gains_are_measured_against_the_last_gain_not_the_last_score():
    # 0.6 -> +0.006 -> +0.006: the second is 0.012 over the last gain (0.6), so it counts.
    assert stop_index([0.6, 0.606, 0.612, 0.612, 0.612, 0.612, 0.612]) == 7
    # Without that second small step the plateau at 0.606 stops at evaluation 5.
    assert stop_index([0.6, 0.606, 0.606, 0.606, 0.606, 0.606]) == 5


def test_a_gain_of_min_delta_resets_patience():
    # Values exact in binary so "a gain of exactly min_delta" is not muddied by rounding.
    scores = [0.5, 0.5, 0.5, 0.5, 0.625, 0.625, 0.625, 0.625, 0.625]
    assert stop_index(scores, patience=4, min_delta=0.125) == 9
    # A gain just under min_delta does not reset.
    scores = [0.5, 0.5, 0.5, 0.5, 0.62, 0.62]
    assert stop_index(scores, patience=4, min_delta=0.125) == 5


def test_a_big_gain_resets_patience():
    scores = [0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7]
    assert stop_index(scores) == 9


def test_best_step_is_the_step_of_the_highest_score():
    stopper = EarlyStopping(patience=10)
    returned = [stopper.update(s, step) for s, step in [(0.7, 50), (0.9, 100), (0.8, 150), (0.85, 200)]]
    assert returned == [True, True, False, False]
    assert stopper.best_step == 100
    assert stopper.best_score == 0.9


def test_a_new_best_below_min_delta_is_still_the_best_state():
    stopper = EarlyStopping(patience=10, min_delta=0.01)
    stopper.update(0.9, 50)
    assert stopper.update(0.905, 100) is True
    assert stopper.best_step == 100 and stopper.best_score == 0.905


def test_ties_keep_the_earlier_step():
    stopper = EarlyStopping(patience=10)
    assert stopper.update(0.8, 50) is True
    assert stopper.update(0.8, 100) is False
    assert stopper.best_step == 50


def test_first_evaluation_always_names_a_best_state():
    for score in (0.0, 0.3, 1.0, None, float("nan")):
        stopper = EarlyStopping()
        assert stopper.best_step == -1
        assert stopper.update(score, step=7) is True
        assert stopper.best_step == 7


@pytest.mark.parametrize("undefined", [None, float("nan")])
def test_undefined_scores_are_never_best_after_a_real_one(undefined):
    stopper = EarlyStopping(patience=10)
    stopper.update(0.7, 50)
    assert stopper.update(undefined, 100) is False
    assert stopper.best_step == 50 and stopper.best_score == 0.7


@pytest.mark.parametrize("undefined", [None, float("nan")])
def test_undefined_scores_count_against_patience(undefined):
    assert stop_index([0.7, undefined, undefined, undefined, undefined]) == 5


@pytest.mark.parametrize("undefined", [None, float("nan")])
def test_all_undefined_scores_run_out_of_patience(undefined):
    # A validation set of one class has no AUROC: the stage must not run its whole schedule
    # (up to 30,000 steps for a 1-example train split) for nothing.
    stopper = EarlyStopping(patience=4)
    for i in range(1, 5):
        stopper.update(undefined, step=i)
    assert stopper.should_stop
    assert stopper.best_step == 1
    assert math.isinf(stopper.best_score) and stopper.best_score < 0


def test_a_real_score_after_undefined_ones_is_a_gain_and_the_best():
    stopper = EarlyStopping(patience=4)
    for i in range(1, 4):
        stopper.update(None, step=i)
    assert stopper.update(0.55, step=4) is True
    assert not stopper.should_stop
    assert stopper.best_step == 4 and stopper.best_score == 0.55
    assert stop_index([None, None, None, 0.55, 0.55, 0.55, 0.55, 0.55]) == 8


def test_no_stop_in_the_cold_start_however_long_the_wait():
    stopper = EarlyStopping(patience=2, min_delta=0.01, not_before=1000)
    for i, examples in enumerate(range(100, 1000, 100)):  # flat at chance: patience long run out
        stopper.update(0.5, step=i + 1, examples=examples)
        assert stopper.in_cold_start and not stopper.should_stop
    stopper.update(0.5, step=10, examples=1000)
    assert not stopper.in_cold_start and stopper.should_stop


def test_patience_in_examples_counts_examples_since_the_last_gain():
    stopper = EarlyStopping(min_delta=0.01, patience_examples=300)
    stopper.update(0.60, step=1, examples=100)  # a gain
    stopper.update(0.605, step=2, examples=200)  # a best, not a gain
    stopper.update(0.60, step=3, examples=300)
    assert not stopper.should_stop  # 200 examples since the gain
    stopper.update(0.62, step=4, examples=400)  # a gain: the count starts again
    stopper.update(0.62, step=5, examples=600)
    assert not stopper.should_stop
    stopper.update(0.62, step=6, examples=700)
    assert stopper.should_stop and stopper.best_step == 4


def test_patience_in_examples_never_stops_at_a_new_best():
    # Gains under min_delta do not reset patience, but a stage at its best is still improving.
    stopper = EarlyStopping(min_delta=0.01, patience_examples=300)
    stopper.update(0.60, step=1, examples=100)  # a gain
    for step, score in ((2, 0.602), (3, 0.604), (4, 0.606), (5, 0.608)):  # bests, none a gain
        stopper.update(score, step=step, examples=100 * step)
        assert not stopper.should_stop
    stopper.update(0.607, step=6, examples=600)  # no longer the best: patience has run out
    assert stopper.should_stop and stopper.best_step == 5


def test_the_paper_rule_counts_evaluations_even_at_a_new_best():
    assert stop_index([0.60, 0.602, 0.604, 0.606, 0.608]) == 5
