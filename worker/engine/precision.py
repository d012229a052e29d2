"""Which arithmetic a trial trains in: bf16 where the hardware multiplies it natively, fp32 elsewhere.

A trial's precision is part of its spec (MethodParams.precision), so it is part of its key: a bf16
trial and an fp32 trial of the same point are two measurements, not one. What the spec says is what
runs, whatever the host: the service fills it in when it builds the spec, from LABELMIX_PRECISION
(`auto` reads this machine's hardware). Where the service and its workers run on different hardware,
set LABELMIX_PRECISION for all of them (docker-compose.yml does).

- bf16 on a CPU: the base model keeps fp32 weights and its forward runs under
  torch.autocast(bfloat16); LoRA adapters, the head, the optimizer and the loss stay fp32. On this
  project's AVX512-BF16 CPU a MiniLM training step ran 1.39x faster than fp32 at 32 tokens an input,
  and no faster at word_sentiment's 12 (python -m bench.engine.precision).
- bf16 on a GPU: the frozen base is loaded in bf16, the paper's setup (adapters and head in fp32).
- fp32: everything in fp32.

Detection reads the CPU's flags, never guesses from its name, and does not import torch: the service
builds specs without loading the engine.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from .settings import engine_settings

log = logging.getLogger(__name__)

# CPU flags (as /proc/cpuinfo spells them) whose presence means bf16 matrix products run natively.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"


def _first_cpu(cpuinfo: str | None) -> dict[str, str]:
    """The fields of the first CPU in /proc/cpuinfo (or in `cpuinfo`, its text); empty where unreadable."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():  # the whole text: some ARM kernels list Features after the CPUs
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip(), value.strip())  # the first CPU's value wins
    return fields


def _flags(fields: dict[str, str]) -> frozenset[str]:
    return frozenset((fields.get("flags") or fields.get("Features") or "").split())


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The flags of the first CPU in /proc/cpuinfo (or of `cpuinfo`, its text); empty where unreadable."""
    return _flags(_first_cpu(cpuinfo))


def cpu_kind(cpuinfo: str | None = None) -> str:
    """This CPU as benchmarks name it, e.g. "AMD EPYC, family 26 model 2, avx512_bf16": the same bf16
    trial (same engine, same seed) can score a little differently from one kind to another, so stored
    measurements say which kind made them."""
    fields = _first_cpu(cpuinfo)
    if not fields:
        return "unknown CPU"
    bf16 = sorted(BF16_CPU_FLAGS & _flags(fields)) or ["no bf16"]
    name = fields.get("model name", "unknown CPU")
    return f"{name}, family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, {' '.join(bf16)}"


@lru_cache
def cpu_supports_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16)."""
    if BF16_CPU_FLAGS & cpu_flags():
        return True
    # Not Linux (no /proc/cpuinfo): ask torch's own CPU probe when torch is already loaded.
    import sys

    torch = sys.modules.get("torch")
    probe = getattr(getattr(getattr(torch, "_C", None), "_cpu", None), "_is_avx512_bf16_supported", None)
    return bool(probe()) if probe else False


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible to this process, without importing torch."""
    import os

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def resolve_precision(setting: str, device: str = "auto") -> Precision:
    """LABELMIX_PRECISION (`auto`, `fp32` or `bf16`) as the precision a new trial trains in."""
    if setting != "auto":
        return Precision(setting)
    if device != "cpu" and gpu_visible():
        return Precision.bf16
    return Precision.bf16 if cpu_supports_bf16() else Precision.fp32


def default_precision() -> Precision:
    """The precision new trials train in on this service (LABELMIX_PRECISION, `auto` by default)."""
    settings = engine_settings()
    return resolve_precision(settings.precision, settings.device)


def warn_if_emulated(precision: Precision, device_type: str) -> None:
    """bf16 on a CPU without it still runs (torch emulates it), only slower: say so once per process."""
    if precision == Precision.bf16 and device_type == "cpu" and not cpu_supports_bf16():
        _warn_once()


@lru_cache
def _warn_once() -> None:
    log.warning("this trial asks for bf16 but this CPU has no native bf16 (%s): it runs, emulated and slower",
                "/".join(sorted(BF16_CPU_FLAGS)))
