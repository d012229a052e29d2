"""Engine settings from the environment (LABELMIX_*), with defaults that work on a laptop."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELMIX_", extra="ignore")

    # Converted models and weak labels are computed once and kept here.
    cache_dir: Path = Path.home() / ".cache" / "labelmix"
    # "auto" picks CUDA when present; "cpu" forces the CPU even on a GPU host.
    device: str = "auto"
    # The precision new trials train in (worker/engine/precision.py): "auto" is bf16 on a GPU and on a
    # CPU with native bf16 (avx512_bf16 or amx_bf16 in its flags), fp32 elsewhere; "fp32" or "bf16"
    # forces one. It is written into each trial's spec (and so its key) when the spec is built.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
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
    # Score (validation, the pool, the test) through base weights with the adapter added in, one
    # matmul a projection instead of three, where the base is fp32 (the CPU): `python -m
    # bench.engine.evaluation` compares. Scores move by float rounding, so a trial's result may differ
    # in the last bits from one scored unmerged; false scores as before.
    merged_inference: bool = True
    # Models a request may name besides the packaged ones, each by a name: a JSON object of name ->
    # local directory or Hugging Face hub id (LABELMIX_ALLOWED_MODELS='{"my-bert": "/models/bert",
    # "qwen-0.5b": "Qwen/Qwen2.5-0.5B"}'), or a JSON list of hub ids and directories, each named by
    # its own spelling. Nothing else loads: a spec that could be any path let a request probe the
    # server's directories and have a worker load whatever held a config.json. A packaged model's
    # name always means the packaged model.
    allowed_models: dict[str, str] = Field(default_factory=dict)

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _a_list_names_each_by_itself(cls, value):
        return {str(v): str(v) for v in value} if isinstance(value, (list, tuple)) else value

    @field_validator("allowed_models")
    @classmethod
    def _names_fit_a_trial_row(cls, models: dict[str, str]) -> dict[str, str]:
        for name, location in models.items():
            # Trials store the model's name in a column of 200 characters.
            if not 0 < len(name) <= 200 or not location:
                raise ValueError(f"LABELMIX_ALLOWED_MODELS: {name[:40]!r} needs a name of 1-200 characters and a location")
        return models


@lru_cache
def engine_settings() -> EngineSettings:
    return EngineSettings()
