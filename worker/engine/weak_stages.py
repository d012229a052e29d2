"""The weak-stage store: a trained weak stage is kept, and any later trial with the same weak
prefix starts from it instead of training it again.

A weak stage depends on the task's pool (texts and weak labels), the model, the seed (which fixes
the draw, the batch order and the initialisation), n_weak, the method's weak-stage variant and the
params; not on n_gold, which is spent afterwards. So seq_sft at (n_weak 1280, n_gold 128) and
uncertainty_sft at (1280, 64) share one. After the stage, the adapter and head, the trial's
generator state and torch's RNG state are stored; restoring them leaves the trial exactly where
training would have (bit-identical on the CPU, tested in tests/engine/test_resident_and_reuse.py).

uncertainty_sft then scores the untaken pool (~30k examples on the built-in tasks) with the
weak-trained model: most of such a trial's time once its weak stage is reused. Those scores are a
function of the stage too, so they are kept beside it (`<key>.pool.npz`) with the candidates they
were computed for, and read back only for exactly those candidates in that order: the same batches,
so the same floats.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .runtime import library_versions
from .settings import engine_settings
from .spec import StageResult, weak_stage_method

if TYPE_CHECKING:  # methods import this module: no import cycle at run time
    from .methods.context import TrialContext

log = logging.getLogger(__name__)

FORMAT = 1
# Params that act only after the weak stage: trials differing in them share it.
_AFTER_WEAK_STAGE = {"n_test", "uncertainty_candidates"}


def pool_fingerprint(ctx: TrialContext) -> str:
    """A digest of the pool's ids and weak labels: an uploaded task's name does not fix its data."""
    pool = ctx.draw.pool
    digest = hashlib.sha256("\n".join(pool.ids).encode())
    digest.update(np.ascontiguousarray(pool.labels, dtype=np.int64).tobytes())
    if pool.weak_probs is not None:
        digest.update(np.ascontiguousarray(pool.weak_probs, dtype=np.float32).tobytes())
    return digest.hexdigest()


def weak_prefix(spec) -> tuple | None:
    """What of a spec fixes its weak stage, before anything is built; None when it trains none.

    Equal prefixes (on one task build and runtime) mean equal weak_stage_key()s: the scheduler uses
    it to keep trials that share a stage out of one group, so the later ones reuse it.
    """
    if spec.n_weak == 0:
        return None
    params = spec.params.model_dump(mode="json", exclude=_AFTER_WEAK_STAGE)
    return (spec.task, spec.task_version, spec.engine_version, spec.model, spec.weak_labeler,
            weak_stage_method(spec.method).value, spec.n_weak, spec.seed, spec.recipe.value,
            json.dumps(params, sort_keys=True))


def weak_stage_key(ctx: TrialContext) -> str:
    spec = ctx.spec
    params = spec.params.model_dump(mode="json", exclude=_AFTER_WEAK_STAGE)
    identity = {
        "format": FORMAT,
        "task": spec.task,
        "task_version": spec.task_version,
        # Another engine trains the stage otherwise (engine version 4 changed only bf16's attention
        # kernel, which nothing else here names): its stored stages are not this engine's.
        "engine_version": spec.engine_version,
        "pool": pool_fingerprint(ctx),
        "model": [spec.model, ctx.model.path, ctx.model.layers],
        "weak_labeler": spec.weak_labeler,
        "method": weak_stage_method(spec.method).value,
        "n_weak": spec.n_weak,
        "weak_stage": [ctx.plan.weak_stage.total, ctx.plan.weak_stage.n_val],
        "seed": spec.seed,
        "recipe": spec.recipe.value,
        "params": params,
        "runtime": [str(ctx.runtime.device.type), str(ctx.runtime.dtype), ctx.runtime.attention],
        "versions": library_versions(),
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class WeakStageStore:
    """The stored state of one weak stage, under its key in the cache directory."""

    ctx: TrialContext
    path: Path

    def load(self, model, batcher) -> StageResult | None:
        """Restore the stage into `model`, the trial's generator and torch's RNG; None if not stored."""
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception:  # a torn or foreign file: train the stage again and overwrite it
            log.warning("ignoring unreadable stored weak stage %s", self.path, exc_info=True)
            return None
        model.load_trainable_state(saved["trainable"])
        self.ctx.rng.bit_generator.state = json.loads(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        batcher.truncated += saved["truncated"]
        os.utime(self.path)  # recently used: pruned last
        stage = StageResult.model_validate_json(saved["stage"])
        return stage.model_copy(update={"reused": True})

    @property
    def pool_path(self) -> Path:
        return self.path.with_suffix(".pool.npz")

    def load_pool_probs(self, candidates: np.ndarray) -> np.ndarray | None:
        """The stage's probabilities for `candidates`, if it scored exactly these before; else None."""
        try:
            with np.load(self.pool_path) as saved:
                if not np.array_equal(saved["candidates"], candidates):
                    return None
                probs = saved["probs"]
        except FileNotFoundError:
            return None
        except Exception:  # torn or foreign: score again and overwrite
            log.warning("ignoring unreadable stored pool scores %s", self.pool_path, exc_info=True)
            return None
        os.utime(self.pool_path)
        return probs

    def save_pool_probs(self, candidates: np.ndarray, probs: np.ndarray) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, candidates=candidates, probs=probs)

        _write_atomically(self.pool_path, write)

    def save(self, model, batcher, stage: StageResult) -> None:
        state = {
            "trainable": {name: t.cpu() for name, t in model.trainable_state().items()},
            "generator": json.dumps(self.ctx.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "truncated": stage.truncated_inputs,
            "stage": stage.model_dump_json(),
        }
        _write_atomically(self.path, lambda tmp: torch.save(state, tmp))


def _write_atomically(path: Path, write) -> None:
    """write(tmp) then rename over `path`: a reader never sees half a file. Then prune the store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    prune(path.parent, engine_settings().weak_stage_cache_mb * 2**20)


def store_dir() -> Path:
    return engine_settings().cache_dir / "weak_stages"


def store_for(ctx: TrialContext) -> WeakStageStore | None:
    """The store for this trial's weak stage, or None when reuse is off."""
    if not engine_settings().reuse_weak_stages:
        return None
    return WeakStageStore(ctx, store_dir() / f"{weak_stage_key(ctx)}.pt")


def prune(directory: Path, max_bytes: int) -> None:
    """Delete stored stages and pool scores, least recently used first, until the rest fit in max_bytes."""
    files = sorted([*directory.glob("*.pt"), *directory.glob("*.pool.npz")], key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    for path in files:
        if total <= max_bytes:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
