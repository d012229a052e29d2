"""A stage's schedule: epochs from the examples budget, warmup and evaluation capped at one epoch."""

from __future__ import annotations

import math

import pytest

from worker.engine.spec import MethodParams
from worker.engine.training.loop import Schedule


@pytest.mark.parametrize(
    "n_train, steps_per_epoch, total, warmup, eval_every",
    [
        (1, 1, 30_000, 2, 1),  # warmup is at least 2 even when an epoch is one step
        (8, 1, 3750, 2, 1),
        (32, 1, 938, 2, 1),
        (33, 2, 1819, 2, 2),
        (100, 4, 1200, 4, 4),
        (1000, 32, 960, 32, 32),
        (3278, 103, 943, 40, 50),
        (8000, 250, 938, 40, 50),
        (30_000, 938, 938, 40, 50),
        (40_000, 1250, 1250, 40, 50),  # at least one epoch, even past the examples budget
    ],
)
def test_schedule_pinned(n_train, steps_per_epoch, total, warmup, eval_every):
    s = Schedule.for_stage(n_train, MethodParams())
    assert (s.steps_per_epoch, s.total_steps, s.warmup_steps, s.eval_every) == (
        steps_per_epoch,
        total,
        warmup,
        eval_every,
    )


@pytest.mark.parametrize("n_train", [1, 2, 5, 31, 32, 33, 63, 64, 65, 200, 1279, 1280, 1281, 1601, 29_999, 123_457])
@pytest.mark.parametrize("batch_size", [1, 16, 32])
def test_schedule_formulas(n_train, batch_size):
    params = MethodParams(batch_size=batch_size)
    s = Schedule.for_stage(n_train, params)
    spe = math.ceil(n_train / batch_size)
    assert s.steps_per_epoch == spe
    assert s.total_steps == math.ceil(max(30_000 / n_train, 1) * spe)
    assert s.total_steps >= spe  # at least one epoch
    assert s.warmup_steps == max(min(40, spe), 2)
    assert s.eval_every == min(50, spe)
    # examples seen: the budget of 30,000, give or take the last partial batch of each epoch
    assert s.total_steps * batch_size >= min(30_000, n_train)


def test_max_steps_per_stage_caps_only_the_total():
    capped = Schedule.for_stage(100, MethodParams(max_steps_per_stage=10))
    free = Schedule.for_stage(100, MethodParams())
    assert capped.total_steps == 10
    assert (capped.steps_per_epoch, capped.warmup_steps, capped.eval_every) == (
        free.steps_per_epoch,
        free.warmup_steps,
        free.eval_every,
    )
    # a cap above the schedule changes nothing
    assert Schedule.for_stage(100, MethodParams(max_steps_per_stage=10**6)) == free


def test_custom_warmup_and_eval_every_are_still_capped_at_one_epoch():
    params = MethodParams(warmup_steps=0, eval_every=7, max_examples_per_stage=640)
    s = Schedule.for_stage(64, params)  # 2 steps per epoch, 10 epochs
    assert s == Schedule(steps_per_epoch=2, total_steps=20, warmup_steps=2, eval_every=2)
    s = Schedule.for_stage(6400, params)  # 200 steps per epoch; budget below one epoch
    assert s == Schedule(steps_per_epoch=200, total_steps=200, warmup_steps=2, eval_every=7)
    s = Schedule.for_stage(6400, MethodParams(warmup_steps=100, eval_every=500))
    assert (s.warmup_steps, s.eval_every) == (100, 200)
