"""Several trials' LoRA adapters and heads on one frozen base: one forward per step for all of them.

The multi-LoRA training idea of mLoRA/ASPEN and tLoRA: a batch holds rows of several trials, in
contiguous segments; every adapted Linear computes the frozen projection once for the whole batch
and adds each segment's own low-rank update; the pooled rows go through their own trial's head.
Gradients of one trial's loss reach only its own adapter and head, so each trial keeps its own
optimizer. Each trial starts from exactly the adapter and head peft would give it (copied over by
name), and a `MemberView` reads and writes them under peft's names, so the weak-stage store and
the single-trial path see the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import autocast
from .classifier import LORA_ALPHA, LORA_RANK, lora_targets, merged_projections, pool

# peft's names for one target's weights, e.g. "backbone.base_model.model.<path>.lora_A.default.weight".
_PEFT_PREFIX = "backbone.base_model.model."
_PEFT_ADAPTER = "default"


@dataclass
class Routing:
    """Which rows of the current batch belong to which trial: (member, start, stop), in order."""

    segments: list[tuple[int, int, int]] = field(default_factory=list)


class MultiLoRALinear(nn.Module):
    """A frozen Linear plus one rank-r update per member, applied to that member's rows only."""

    def __init__(self, base: nn.Linear, members: int, routing: Routing, rank: int = LORA_RANK, alpha: int = LORA_ALPHA):
        super().__init__()
        self.base, self.routing, self.scaling = base, routing, alpha / rank
        device = base.weight.device
        self.lora_A = nn.ParameterList(
            [nn.Parameter(torch.zeros(rank, base.in_features, device=device)) for _ in range(members)]
        )
        self.lora_B = nn.ParameterList(
            [nn.Parameter(torch.zeros(base.out_features, rank, device=device)) for _ in range(members)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        updates = [
            F.linear(F.linear(x[start:stop].to(self.lora_A[m].dtype), self.lora_A[m]), self.lora_B[m]) * self.scaling
            for m, start, stop in self.routing.segments
        ]
        return out + torch.cat(updates).to(out.dtype)


def _parent(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent_path, _, name = path.rpartition(".")
    return (root.get_submodule(parent_path) if parent_path else root), name


class MultiLoRAClassifier(nn.Module):
    """The base with MultiLoRALinear in place of each target Linear, and one 2-way head per member.

    `detach()` puts the original Linear modules back, leaving the base as it was lent.
    """

    def __init__(self, backbone: nn.Module, hidden_size: int, pooling: str, members: int,
                 autocast_dtype: torch.dtype | None = None):
        super().__init__()
        self.backbone, self.pooling, self.members = backbone, pooling, members
        self.autocast_dtype = autocast_dtype  # as SequenceClassifier's
        self.routing = Routing()
        self.targets = lora_targets(backbone)
        self.adapters = {}
        for path in self.targets:
            parent, name = _parent(backbone, path)
            wrapped = MultiLoRALinear(getattr(parent, name), members, self.routing)
            setattr(parent, name, wrapped)
            self.adapters[path] = wrapped
        device = next(backbone.parameters()).device
        self.head_weight = nn.ParameterList(
            [nn.Parameter(torch.zeros(2, hidden_size, device=device)) for _ in range(members)]
        )
        self.head_bias = nn.ParameterList([nn.Parameter(torch.zeros(2, device=device)) for _ in range(members)])

    def detach(self) -> None:
        for path, wrapped in self.adapters.items():
            parent, name = _parent(self.backbone, path)
            setattr(parent, name, wrapped.base)
        self.adapters = {}

    @property
    def config(self):
        return self.backbone.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, segments: list[tuple[int, int, int]]):
        self.routing.segments = segments
        with autocast(input_ids.device, self.autocast_dtype):
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.pooling).float()
        return torch.cat(
            [F.linear(pooled[start:stop], self.head_weight[m], self.head_bias[m]) for m, start, stop in segments]
        )

    def member_tensors(self, m: int) -> dict[str, nn.Parameter]:
        """Member m's trainable tensors under the names peft's classifier gives them."""
        named = {}
        for path, wrapped in self.adapters.items():
            named[f"{_PEFT_PREFIX}{path}.lora_A.{_PEFT_ADAPTER}.weight"] = wrapped.lora_A[m]
            named[f"{_PEFT_PREFIX}{path}.lora_B.{_PEFT_ADAPTER}.weight"] = wrapped.lora_B[m]
        named["head.weight"] = self.head_weight[m]
        named["head.bias"] = self.head_bias[m]
        return named


class MemberView:
    """One trial's classifier inside a MultiLoRAClassifier: what training and evaluation call."""

    def __init__(self, group: MultiLoRAClassifier, m: int):
        self.group, self.m = group, m
        self._tensors = group.member_tensors(m)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.group(input_ids, attention_mask, [(self.m, 0, input_ids.shape[0])])

    @property
    def config(self):
        return self.group.config

    @property
    def training(self) -> bool:
        return self.group.training

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return self.group.autocast_dtype

    def merged_adapter(self):
        """A block in which every row goes through the base with this member's updates folded in."""
        m = self.m
        return merged_projections([
            (wrapped, wrapped.base, lambda w=wrapped: (w.lora_B[m] @ w.lora_A[m]) * w.scaling)
            for wrapped in self.group.adapters.values()
        ])

    def train(self, mode: bool = True) -> "MemberView":
        self.group.train(mode)
        return self

    def eval(self) -> "MemberView":
        return self.train(False)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self._tensors.values())

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self._tensors.items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self._tensors) - set(state)
        if missing:
            raise KeyError(f"state lacks {len(missing)} tensors, e.g. {sorted(missing)[0]}")
        with torch.no_grad():
            for name, value in state.items():
                self._tensors[name].copy_(value)
