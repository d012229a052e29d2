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


@lru_cache
def engine_settings() -> EngineSettings:
    return EngineSettings()
