"""Device, precision, seeding and library versions: the parts of a run that depend on the host."""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from .precision import Precision, cpu_kind, warn_if_emulated
from .settings import engine_settings


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype  # of the frozen base model; adapters and the head stay in fp32
    precision: Precision = Precision.fp32

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype the base's forward runs in under autocast: bf16 on a CPU asked for bf16 (its
        weights stay fp32); None where the weights' own dtype is the arithmetic (fp32, or a GPU's bf16 base)."""
        return torch.bfloat16 if self.precision == Precision.bf16 and self.device.type == "cpu" else None

    @property
    def attention(self) -> str | None:
        """The attention implementation backbones are loaded with: "eager" under a CPU's bf16 autocast,
        the library's default (SDPA) elsewhere. There, torch's CPU flash-attention backward took 59% of
        a training step (46 ms a layer for a batch of 32 x 16 tokens): eager steps are 2x faster
        (`python -m bench.engine.attention`). fp32 on a CPU is as fast either way, so it keeps SDPA
        and the numbers it has always given."""
        return "eager" if self.autocast_dtype is not None else None

    def autocast(self):
        """A block whose forward passes run in this runtime's arithmetic (a no-op without autocast)."""
        return autocast(self.device, self.autocast_dtype)

    @property
    def label(self) -> str:
        if self.device.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name(self.device)}"
        return self.device.type

    @property
    def machine(self) -> str:
        """The hardware kind that computes: the GPU's name, or the CPU's kind (model, family, bf16
        flags). The same bf16 trial can score a little differently from one kind to another."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return cpu_kind()

    def eval_batch_size(self, requested: int) -> int:
        """The recipe's evaluation batch on the CPU; on a GPU at least `cuda_eval_batch_size`.

        Evaluation keeps no activations for a backward pass, so a GPU fills far larger batches
        than training's, and a small model's evaluation is otherwise launch-bound there.
        Scores do not depend on it beyond float noise (batches are padded per batch, masked).
        """
        if self.device.type == "cuda":
            return max(requested, engine_settings().cuda_eval_batch_size)
        return requested


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Forward passes in `dtype` under torch.autocast (bf16 on a CPU: the weights stay fp32); a no-op
    when `dtype` is None. Models keep Runtime.autocast_dtype and enter this around their base."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def apply_threads() -> int:
    """Set torch's thread count from LABELMIX_TORCH_THREADS (0: torch's default); returns the count."""
    wanted = engine_settings().torch_threads
    if wanted and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def pick_runtime(precision: Precision | str = Precision.fp32) -> Runtime:
    """The device from LABELMIX_DEVICE, in the precision asked (a trial's comes from its spec).

    bf16 on a GPU: bf16 base weights with TF32 matmuls (as in the paper). bf16 on a CPU: fp32 weights,
    forward under bf16 autocast (autocast). fp32: fp32 weights and arithmetic (TF32 on a GPU).
    """
    apply_threads()
    precision = Precision(precision)
    wanted = engine_settings().device
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(wanted)
    warn_if_emulated(precision, device.type)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return Runtime(device, torch.bfloat16 if precision == Precision.bf16 else torch.float32, precision)
    return Runtime(device, torch.float32, precision)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def library_versions() -> dict[str, str]:
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
