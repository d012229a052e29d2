"""Engine settings from the environment (LABELMIX_*), with defaults that work on a laptop."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELMIX_", extra="ignore")

    # Converted models and weak labels are computed once and kept here.
    cache_dir: Path = Path.home() / ".cache" / "labelmix"
    # "auto" picks CUDA when present; "cpu" forces the CPU even on a GPU host.
    device: str = "auto"


@lru_cache
def engine_settings() -> EngineSettings:
    return EngineSettings()
