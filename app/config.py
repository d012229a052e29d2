"""Service settings from the environment (LABELMIX_*).

Unconfigured, labelmix is embedded: a SQLite file and trials run in the API process. Set
LABELMIX_DATABASE_URL=postgresql+psycopg://... and LABELMIX_BROKER_URL=redis://... to distribute.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DATA_DIR = Path.home() / ".local" / "share" / "labelmix"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELMIX_", extra="ignore")

    database_url: str = f"sqlite:///{_DATA_DIR / 'labelmix.sqlite'}"
    broker_url: str | None = None
    # A trial whose heartbeat is older than this is presumed dead (its worker was killed) and requeued.
    stale_trial_after_s: int = 600
    # Attempts before a trial is marked failed for good (a crashing trial is not requeued forever).
    max_trial_attempts: int = 3
    # The longest a trial may run; the broker's redelivery timeout sits above it.
    trial_time_limit_s: int = 6 * 3600
    # Study points whose trials run at once per allocation (workers share them).
    max_points_in_flight: int = 4

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError("LABELMIX_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        return url

    @field_validator("broker_url")
    @classmethod
    def _empty_means_embedded(cls, url: str | None) -> str | None:
        return url or None

    @property
    def optuna_storage_url(self) -> str:
        """Optuna's tables live in the app's Postgres database; with SQLite, in a sibling file.

        SQLite allows one writer at a time, and a study step writes app rows and Optuna rows from
        two connections inside one transaction: sharing one file would make them wait on each other.
        """
        if self.database_url.startswith("sqlite:///") and not self.database_url.endswith(":memory:"):
            return self.database_url.removesuffix(".sqlite") + "-optuna.sqlite"
        return self.database_url

    @property
    def embedded(self) -> bool:
        return self.broker_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
