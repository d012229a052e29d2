"""bench.engine.interleave: benchmark arms that take turns, and the allocation benchmark's seconds
taken from their turns."""

from __future__ import annotations

import json
import os
import sys

import pytest

from bench.engine.allocation import take_out_stopped_time
from bench.engine.interleave import ArmProcess, overlap_s, run_in_turns

# A child that burns `cpu_s` seconds of its own CPU time (which stops while it is stopped), noting
# the monotonic clock as it goes, then prints its window and the notes.
BURN = """
import json, sys, time
cpu_s = float(sys.argv[1])
started, cpu_started, notes = time.monotonic(), time.process_time(), []
while time.process_time() - cpu_started < cpu_s:
    notes.append(time.monotonic())
print(json.dumps({"window": [started, time.monotonic()], "notes": notes[::200],
                  "cpu_s": time.process_time() - cpu_started}))
"""


def test_overlap_counts_only_the_part_of_a_window_inside_the_turns():
    turns = [(0.0, 1.0), (2.0, 3.0), (4.0, 5.0)]
    assert overlap_s(turns, 0.5, 4.5) == pytest.approx(0.5 + 1.0 + 0.5)
    assert overlap_s(turns, 1.0, 2.0) == 0.0
    assert overlap_s(turns, -10.0, 10.0) == pytest.approx(3.0)
    assert overlap_s([], 0.0, 1.0) == 0.0


def test_arms_run_only_inside_their_own_turns_and_their_running_time_excludes_the_stops():
    arms = [ArmProcess(name, [sys.executable, "-c", BURN, "0.6"], dict(os.environ)) for name in ("a", "b")]
    run_in_turns(arms, turn_s=0.1)
    reports = {}
    for arm in arms:
        assert arm.process.returncode == 0
        reports[arm.name] = json.loads(arm.output)
        # It took turns: stopped in between (0.6 s of CPU cannot fit one 0.1 s turn).
        assert len(arm.turns) >= 4
    a_turns, b_turns = arms[0].turns, arms[1].turns
    for (a_start, a_end) in a_turns:  # never both at once
        assert all(b_end <= a_start or b_start >= a_end for b_start, b_end in b_turns)
    for arm in arms:
        report = reports[arm.name]
        # Every note the child took lies inside one of its own turns: it did not run in the other's.
        # (up to 1 ms after a turn's noted end: see the stop's latency below)
        assert all(any(start <= note <= end + 0.001 for start, end in arm.turns) for note in report["notes"])
        window = report["window"]
        ran = overlap_s(arm.turns, *window)
        # The time it ran holds its CPU time (one thread) and is shorter than its window, stops included.
        # A SIGSTOP lands a few microseconds after killpg returns and the turn's end is noted, so
        # the child can burn that much past it (CI saw 40 us over 0.6 s): 1 ms a turn is allowed.
        assert report["cpu_s"] <= ran + 0.001 * len(arm.turns)
        assert ran < window[1] - window[0]


def test_a_failing_arm_ends_the_turns_with_its_exit_status_and_the_other_runs_to_its_end():
    fails = [sys.executable, "-c", "import sys; print('{}'); sys.exit(3)"]
    arms = [ArmProcess("fails", fails, dict(os.environ)),
            ArmProcess("runs", [sys.executable, "-c", BURN, "0.2"], dict(os.environ))]
    run_in_turns(arms, turn_s=0.05)
    assert arms[0].process.returncode == 3
    assert arms[1].process.returncode == 0 and json.loads(arms[1].output)["cpu_s"] >= 0.2


def test_no_arm_is_left_stopped_when_starting_another_fails():
    arms = [ArmProcess("sleeps", [sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ)),
            ArmProcess("missing", ["/nonexistent/labelmix-arm"], dict(os.environ))]
    with pytest.raises(FileNotFoundError):
        run_in_turns(arms, turn_s=1.0)
    assert arms[0].process.poll() is not None  # killed, not left stopped for ever


def test_turns_must_have_a_length():
    with pytest.raises(ValueError, match="turn_s"):
        run_in_turns([], turn_s=0)


def test_an_arm_and_its_trials_are_timed_by_the_seconds_they_ran():
    # Turns of 10 s with 10 s stops; the arm ran from 0 to 35 (elapsed), its two trials back to back.
    turns = [(0.0, 10.0), (20.0, 30.0), (40.0, 50.0)]
    out = {"wall_s": 35.0, "run_window": [0.0, 35.0], "trials": [
        {"wall_s": 15.0, "started_at": 0.0, "stage_s": {"weak": 6.0, "gold": 9.0}, "pool_scoring_s": 3.0},
        {"wall_s": 20.0, "started_at": 15.0, "stage_s": {"gold": 20.0}, "pool_scoring_s": None},
    ]}
    take_out_stopped_time(out, turns)
    assert (out["elapsed_s"], out["wall_s"], out["turns"]) == (35.0, 20.0, 3)
    first, second = out["trials"]
    assert (first["elapsed_s"], first["wall_s"]) == (15.0, 10.0)  # 0-15 ran 0-10
    # Its stages keep its running share, 2/3.
    assert first["stage_s"] == {"weak": pytest.approx(4.0), "gold": pytest.approx(6.0)}
    assert first["pool_scoring_s"] == pytest.approx(2.0)
    assert (second["elapsed_s"], second["wall_s"]) == (20.0, 10.0)  # 15-35 ran 20-30
    assert second["stage_s"] == {"gold": pytest.approx(10.0)} and second["pool_scoring_s"] is None
