"""Benchmark arms run in turns, never at once, so that a slow spell of a shared host falls on each.

Run one after the other, two arms of 20-40 minutes each measure the host as much as the code: on
2026-12-06 the same cities trials took 1.4-1.9x as long as the day before, in one arm more than in
the other (docs/benchmarks.md). Here every arm's process group starts stopped and the arms take turns
of `turn_s` seconds (SIGCONT, wait, SIGSTOP), so over a run each arm meets the host's spells in
proportion to its running time. An arm's seconds are then the time it ran: the overlap of its turns
with the window it reports timing itself (monotonic clock, shared by every process on the host).

Stopping a process group freezes everything in it, worker processes it spawned included, with no
change to what it computes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ArmProcess:
    """One arm's command, its process group and the turns it has had (monotonic start, end)."""

    name: str
    command: list[str]
    env: dict[str, str]
    turns: list[tuple[float, float]] = field(default_factory=list)
    process: subprocess.Popen | None = None
    output: str = ""  # its stdout, once it has ended

    def send(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:  # the group has exited
            pass

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def overlap_s(turns: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] that fall inside the turns."""
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in turns)


def run_in_turns(arms: list[ArmProcess], turn_s: float) -> list[ArmProcess]:
    """Run the arms' commands to the end, one at a time in turns of `turn_s` seconds, in list order.

    Each command runs in a process group of its own with stdout to a file (a stopped arm must not
    hold a pipe), stderr passed through. Whatever happens here (an error, Ctrl-C), no arm is left
    behind stopped: every group still running is resumed and killed.
    """
    if turn_s <= 0:
        raise ValueError(f"turn_s must be positive, not {turn_s}")
    with tempfile.TemporaryDirectory(prefix="labelmix-turns-") as tmp:
        try:
            outputs = {arm.name: Path(tmp) / f"{arm.name}.out" for arm in arms}
            for arm in arms:
                with outputs[arm.name].open("w") as out:
                    arm.process = subprocess.Popen(arm.command, env=arm.env, stdout=out,
                                                   start_new_session=True)
                arm.send(signal.SIGSTOP)  # it ran a few milliseconds of interpreter start-up
            while any(arm.running for arm in arms):
                for arm in arms:
                    if not arm.running:
                        continue
                    started = time.monotonic()
                    arm.send(signal.SIGCONT)
                    try:
                        arm.process.wait(timeout=turn_s)
                    except subprocess.TimeoutExpired:
                        arm.send(signal.SIGSTOP)
                    arm.turns.append((started, time.monotonic()))
            for arm in arms:
                arm.output = outputs[arm.name].read_text()
        finally:
            for arm in arms:
                if arm.running:
                    arm.send(signal.SIGCONT)
                    arm.send(signal.SIGKILL)
                    arm.process.wait()
    return arms

