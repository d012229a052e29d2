"""Base models a worker keeps in memory between trials: loaded once, a fresh adapter per trial.

Loading MiniLM-L6 took ~5 s of every trial (and longer for larger models). A trial borrows the
resident base, wraps it in a new LoRA adapter and head (initialised from torch's RNG exactly as on a
cold start: loading consumes none of it), and takes the adapter off again when it ends, so the next
trial finds the base as loaded. Bounded by `resident_models` (least recently used out); 0 loads a
model per trial, as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from .models import ResolvedModel, load_backbone, load_causal_lm, load_tokenizer
from .runtime import Runtime
from .settings import engine_settings
from .training.classifier import build_classifier

Kind = Literal["backbone", "causal_lm"]


@dataclass
class Loaded:
    model: object  # a transformers model: the bare backbone, or the causal LM for in-context learning
    tokenizer: object
    in_use: bool = field(default=False, compare=False)


def _load(model: ResolvedModel, runtime: Runtime, kind: Kind) -> Loaded:
    if kind == "backbone":
        net = load_backbone(model, runtime.dtype, attention=runtime.attention)
    else:
        net = load_causal_lm(model, runtime.dtype)
    net = net.to(runtime.device).eval()
    return Loaded(net, load_tokenizer(model))


class ResidentModels:
    """An LRU of loaded models keyed by where they come from, their kind, device, dtype and attention."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # models loaded so far, resident or not: what a warm worker saves

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @contextmanager
    def borrow(self, model: ResolvedModel, runtime: Runtime, kind: Kind = "backbone") -> Iterator[Loaded]:
        """A loaded model for one trial, which must hand it back as it found it (no adapter).

        A model already lent out (a second trial in another thread) is not shared: that trial gets
        a fresh load of its own, kept only if nothing is resident under its key.
        """
        capacity = engine_settings().resident_models
        key = (model.path, model.layers, kind, str(runtime.device), str(runtime.dtype), runtime.attention)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.in_use:
                self._entries.move_to_end(key)
                entry.in_use = True
            else:
                entry = None
        if entry is None:
            entry = _load(model, runtime, kind)
            self.loads += 1
            entry.in_use = True
            if capacity:
                with self._lock:
                    if key not in self._entries:
                        self._entries[key] = entry
                        while len(self._entries) > capacity:
                            self._entries.popitem(last=False)
        try:
            yield entry
        finally:
            entry.model.eval()
            entry.in_use = False


resident_models = ResidentModels()


@contextmanager
def fresh_classifier(model: ResolvedModel, runtime: Runtime, n_classes: int = 2):
    """A classifier with a new adapter and a `n_classes`-way head on the resident base, detached again on exit."""
    with resident_models.borrow(model, runtime) as loaded:
        classifier = build_classifier(model, runtime, backbone=loaded.model, n_classes=n_classes)
        try:
            yield classifier, loaded.tokenizer
        finally:
            # peft's unload swaps each LoRA layer back for the Linear it wrapped, in place.
            classifier.backbone.unload()
