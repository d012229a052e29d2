"""The strong model: a pretrained transformer with LoRA adapters and a fresh K-way head (2-way for binary tasks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..models import ResolvedModel, load_backbone
from ..runtime import Runtime, autocast
from .frozen_cast import cast_frozen_projections
from .lean_lora import lean_lora_forwards

# Paper: LoRA r=8, alpha=8, no dropout, on the attention and MLP projections.
LORA_RANK = 8
LORA_ALPHA = 8
HEAD_INIT_SCALE = 0.01


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per input: its last real token ("last") or the mean of its real tokens ("mean")."""
    if pooling == "last":
        last = attention_mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


@contextmanager
def merged_projections(merges: list[tuple[nn.Module, nn.Linear, Callable[[], torch.Tensor]]]) -> Iterator[None]:
    """Each (module, base, delta): `module` computes x @ (base.weight + delta())^T + bias in one matmul
    until the block ends, then its own forward again.

    The merged weight is a new tensor and the base's own is never written (merging in place and
    subtracting after would leave rounding in the frozen weights, and training would drift from a
    trial scored unmerged). Only fp32 bases merge: in bf16 a small adapter update added to the base
    rounds away, so there the caller gets the unmerged forward, and `delta` is never called (a GPU
    validates every few steps: no adapter products computed to be thrown away).
    """
    merged = [(module, base, delta) for module, base, delta in merges if base.weight.dtype == torch.float32]
    own = {id(module): module.__dict__.get("forward") for module, _, _ in merged}  # e.g. a lean LoRA forward
    try:
        for module, base, delta in merged:
            module.forward = partial(F.linear, weight=base.weight + delta().to(base.weight.dtype), bias=base.bias)
        yield
    finally:
        for module, _, _ in merged:
            module.__dict__.pop("forward", None)
            if own[id(module)] is not None:
                module.forward = own[id(module)]


def pooling_for(model: ResolvedModel) -> str:
    return "last" if model.is_causal else "mean"


class SequenceClassifier(nn.Module):
    """Pools the backbone's last hidden states and applies a linear head kept in fp32.

    Causal LMs pool the last real token (the only one that has seen the whole input); encoders
    mean-pool, since their CLS pooler is not trained for classification in every checkpoint.
    """

    def __init__(self, backbone: nn.Module, hidden_size: int, pooling: str, autocast_dtype: torch.dtype | None = None,
                 n_classes: int = 2):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.autocast_dtype = autocast_dtype  # Runtime.autocast_dtype: the backbone's arithmetic, if not its weights'
        self.head = nn.Linear(hidden_size, n_classes, dtype=torch.float32)
        with torch.no_grad():  # a near-zero start keeps the first predictions near 50/50
            self.head.weight.mul_(HEAD_INIT_SCALE)
            self.head.bias.zero_()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with autocast(input_ids.device, self.autocast_dtype):
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(pool(hidden, attention_mask, self.pooling).float())

    @property
    def config(self):
        return self.backbone.config

    def merged_adapter(self):
        """A block in which the LoRA updates are folded into the base projections (see merged_projections)."""
        from peft.tuners.lora import LoraLayer

        def delta(module: LoraLayer, names: list[str]) -> Callable[[], torch.Tensor]:
            return lambda: sum(module.get_delta_weight(name) for name in names)

        merges = []
        for module in self.backbone.modules():
            if isinstance(module, LoraLayer) and isinstance(module.base_layer, nn.Linear) and not module.merged:
                names = [name for name in module.active_adapters if name in module.lora_A]
                if names:
                    merges.append((module, module.base_layer, delta(module, names)))
        return merged_projections(merges)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Copies of the adapter and head weights: the only state training changes."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        params = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value)


def redrawn_state(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A fresh adapter and head under `state`'s names, drawn as build_classifier draws them (peft's LoRA:
    A kaiming-uniform, B zero; the head: nn.Linear's init scaled by HEAD_INIT_SCALE, bias zero), from a
    generator of its own: a stage restarted from it does not move torch's global stream."""
    generator = torch.Generator().manual_seed(seed)
    fresh = {}
    for name, value in state.items():
        drawn = torch.zeros(value.shape, dtype=torch.float32)
        if "lora_A" in name or name.endswith("head.weight"):
            bound = 1.0 / value.shape[1] ** 0.5  # kaiming_uniform_(a=sqrt(5)), as nn.Linear and peft use
            drawn.uniform_(-bound, bound, generator=generator)
            if name.endswith("head.weight"):
                drawn.mul_(HEAD_INIT_SCALE)
        fresh[name] = drawn.to(device=value.device, dtype=value.dtype)
    return fresh


def lora_targets(backbone: nn.Module) -> list[str]:
    # Every linear projection inside the transformer blocks; a BERT pooler is unused by our pooling.
    return [
        name
        for name, module in backbone.named_modules()
        if isinstance(module, nn.Linear) and "pooler" not in name
    ]


def build_classifier(
    model: ResolvedModel, runtime: Runtime, backbone: nn.Module | None = None, dropout: bool = False,
    n_classes: int = 2,
) -> SequenceClassifier:
    """A fresh LoRA adapter and head on `backbone` (a base model with no adapter), or on a newly
    loaded one. The adapter's and head's initial values come from torch's RNG, as seeded by the caller.
    """
    from peft import LoraConfig, get_peft_model

    if backbone is None:
        backbone = load_backbone(model, runtime.dtype, dropout, attention=runtime.attention)
    config = LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=lora_targets(backbone))
    backbone = get_peft_model(backbone, config)
    lean_lora_forwards(backbone)  # the same arithmetic as peft's forward, less the identities
    hidden_size = backbone.config.hidden_size
    classifier = SequenceClassifier(backbone, hidden_size, pooling=pooling_for(model), autocast_dtype=runtime.autocast_dtype,
                                    n_classes=n_classes).to(runtime.device)
    if runtime.autocast_dtype is not None:  # peft has frozen the base: cast its projections once, not per call
        cast_frozen_projections(classifier.backbone, runtime.autocast_dtype)
    return classifier
