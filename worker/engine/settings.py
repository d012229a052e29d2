"""Engine settings from the environment (LABELMIX_*), with defaults that work on a laptop."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELMIX_", extra="ignore")

    # Converted models and weak labels are computed once and kept here.
    cache_dir: Path = Path.home() / ".cache" / "labelmix"
    # "auto" picks CUDA when present; "cpu" forces the CPU even on a GPU host.
    device: str = "auto"
    # Torch threads per trial process; 0 leaves torch's default (every core). Processes that train
    # side by side must share the cores: two of two threads each on 2 cores ran a step in 37 s, not 3.
    torch_threads: int = Field(0, ge=0)
    # Base models (with their tokenizers) a worker keeps in memory between trials, least recently
    # used first out; 0 loads the model for every trial (the cold behaviour).
    resident_models: int = Field(1, ge=0)
    # A trial whose weak stage was trained before (same task data, model, weak labels, n_weak, seed,
    # params) starts from the stored state instead; the result is the same bit for bit on the CPU.
    reuse_weak_stages: bool = True
    # Stored weak stages are pruned, least recently used first, above this size.
    weak_stage_cache_mb: int = Field(2048, ge=0)
    # Trials trained together on one base model (one forward per step, a LoRA adapter per trial);
    # 0 picks by device: 1 on the CPU (no gain there: a row costs the same in any batch), 8 on a GPU.
    trial_group_size: int = Field(0, ge=0)
    # Evaluation batch size on a GPU (at least the recipe's eval_batch_size): evaluation holds no
    # activations for backward, so a GPU takes far larger batches than the CPU's 64.
    cuda_eval_batch_size: int = Field(512, ge=1)


@lru_cache
def engine_settings() -> EngineSettings:
    return EngineSettings()
