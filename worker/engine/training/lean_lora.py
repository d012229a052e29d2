"""peft's LoRA forward without the two steps that change no value: a lean forward per adapted Linear.

peft computes `base(x) + lora_B(lora_A(dropout(x.to(A.dtype)))) * scaling`. With this project's
adapters (one adapter, no dropout, alpha = rank) two of those steps are identities that still cost a
pass over the activations, forward and backward:
- **the multiply by a scaling of 1.0** (LORA_ALPHA / LORA_RANK): x * 1.0 is x, bit for bit;
- **under a CPU's bf16 autocast, bf16 inputs cast to fp32** (the adapter's dtype), which autocast then
  casts back to bf16 for lora_A: bf16 -> fp32 -> bf16 is lossless both ways, so lora_A gets the same
  bits (and its input gradient comes back the same bits) without the two copies. Outside such a
  block the input is cast as peft casts it.
On a bf16 step of word_sentiment at batch 256 (an AMX Xeon) they were about a quarter of the step:
24 copies of an MLP activation and 12 multiplies by one. Without them a bf16 step is 1.11x faster at
batch 32, an fp32 step about 1.05x (`PYTHONPATH=. python scripts/exact_step_savings_ab.py`). Logits,
gradients and whole trials are equal bit for bit (tests/engine/test_exact_step_savings.py), so no
engine version changes.

Anything else (several adapters, dropout, a variant such as DoRA, merged or disabled adapters,
extra arguments) goes through peft's own forward.
"""

from __future__ import annotations

import torch
from torch import nn

from .frozen_cast import drop_forwards


class _LeanForward:
    def __init__(self, layer: nn.Module, adapter: str):
        self.layer = layer
        self.adapter = adapter
        self.lora_A = layer.lora_A[adapter]
        self.lora_B = layer.lora_B[adapter]
        self.scaling = layer.scaling[adapter]

    def _plain(self) -> bool:
        layer = self.layer
        return (not layer.disable_adapters and not layer.merged and list(layer.active_adapters) == [self.adapter]
                and self.adapter not in layer.lora_variant and isinstance(layer.lora_dropout[self.adapter], nn.Identity))

    def __call__(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        layer = self.layer
        if args or kwargs or not self._plain():
            return type(layer).forward(layer, x, *args, **kwargs)
        result = layer.base_layer(x)
        device = x.device.type
        if not (torch.is_autocast_enabled(device) and x.dtype == torch.get_autocast_dtype(device)):
            x = x.to(self.lora_A.weight.dtype)  # as peft casts; under autocast the round trip would be lossless
        update = self.lora_B(self.lora_A(x))
        if self.scaling != 1:
            update = update * self.scaling
        return (result + update).to(result.dtype)


def lean_lora_forwards(model: nn.Module) -> int:
    """Give each peft LoRA Linear of `model` with a single plain adapter the lean forward; returns how many."""
    from peft.tuners.lora import Linear as LoraLinear

    done = 0
    for module in model.modules():
        if type(module) is LoraLinear and len(module.lora_A) == 1:
            adapter = next(iter(module.lora_A))
            module.forward = _LeanForward(module, adapter)
            done += 1
    return done


def peft_lora_forwards(model: nn.Module) -> int:
    """Put peft's own forward back on every LoRA layer (for A/B runs); returns how many."""
    return drop_forwards(model, _LeanForward)
