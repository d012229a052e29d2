"""The frozen base's projections cast to bf16 once, not on every call, where a CPU trains under autocast.

Under torch.autocast on a CPU every F.linear casts its fp32 weight and bias to bf16 again, forward
after forward: autocast's cast cache keeps only leaves that require grad, and the base is frozen.
A bf16 copy made when the classifier is built is the same bits as each of those casts, so logits and
gradients are equal bit for bit (tests/engine/test_exact_step_savings.py): a trial trains exactly as before
and no engine version changes. What it saves is the casting: 1.00-1.02x a training step on an
AVX512-BF16 EPYC; on an AMX Xeon, where the matrix products themselves are fast enough for the casts
to show, 1.05x a step and 1.09x a no-grad forward at batch 32
(`PYTHONPATH=. python scripts/exact_step_savings_ab.py`, docs/benchmarks.md, engine speed).

Outside an autocast block of that dtype (merged scoring, an fp32 caller) a projection computes with
its own fp32 weights, as it would without the copy. Costs memory: half the base's fp32 size again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _CastOnce:
    """A Linear's forward that uses bf16 copies of its (frozen) weight and bias under a bf16 autocast."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype):
        self.linear = linear
        self.dtype = dtype
        self.weight = linear.weight.detach().to(dtype)
        self.bias = None if linear.bias is None else linear.bias.detach().to(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == self.dtype:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, self.linear.weight, self.linear.bias)


def cast_frozen_projections(backbone: nn.Module, dtype: torch.dtype) -> int:
    """Give each frozen fp32 nn.Linear of `backbone` (after peft froze the base) a forward that reuses
    one `dtype` copy of its weights; returns how many. Adapters wrap the Linear itself, so
    they and the grouped trainer's MultiLoRALinear call this forward too. Idempotent."""
    cast = 0
    for module in backbone.modules():
        if type(module) is not nn.Linear or module.weight.requires_grad or module.weight.dtype != torch.float32:
            continue
        current = module.__dict__.get("forward")
        if not (isinstance(current, _CastOnce) and current.dtype == dtype):
            module.forward = _CastOnce(module, dtype)
        cast += 1
    return cast


def drop_forwards(model: nn.Module, kind: type) -> int:
    """Remove every instance forward of `kind` set on `model`'s modules (each back to its class's own
    forward); returns how many. For A/B runs of a saving that sets such forwards."""
    undone = 0
    for sub in model.modules():
        if isinstance(sub.__dict__.get("forward"), kind):
            del sub.forward
            undone += 1
    return undone


def uncast_frozen_projections(module: nn.Module) -> int:
    """Take the copies away again (each Linear back to casting per call); returns how many."""
    return drop_forwards(module, _CastOnce)
