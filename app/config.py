"""Service settings from the environment (LABELMIX_*).

Unconfigured, labelmix is embedded: a SQLite file and trials run in the API process. Set
LABELMIX_DATABASE_URL=postgresql+psycopg://... and LABELMIX_BROKER_URL=redis://... to distribute.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Network = IPv4Network | IPv6Network

_DATA_DIR = Path.home() / ".local" / "share" / "labelmix"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELMIX_", extra="ignore")

    database_url: str = f"sqlite:///{_DATA_DIR / 'labelmix.sqlite'}"
    broker_url: str | None = None
    # A trial whose heartbeat is older than this is presumed dead (its worker was killed) and requeued.
    stale_trial_after_s: int = 600
    # Attempts before a trial is marked failed for good (a crashing trial is not requeued forever).
    max_trial_attempts: int = 3
    # The longest one attempt at a trial may run: the engine stops it between steps (a final failure),
    # and its heartbeat stops at this limit, so a trial hung inside a step is failed by the sweep.
    trial_time_limit_s: int = 6 * 3600
    # A queued trial whose last message is older than this, while the broker's trials queue is empty,
    # had its message taken by a worker that died before claiming it (or lost with the broker): resent.
    requeue_unclaimed_after_s: int = Field(300, gt=0)
    # Redis hands an unacknowledged message out again after this. The trial row, not the message,
    # guards against running twice, so minutes are safe; it must outlast a retry's countdown (60 s),
    # which the worker holds unacknowledged. See worker/celery_app.py.
    broker_visibility_timeout_s: int = Field(600, ge=60)
    # Postgres connections per process: kept open, and opened beyond that under load. Together they
    # cover the API's 40 request threads (several API processes: multiply; mind max_connections).
    db_pool_size: int = Field(10, ge=1, le=1000)
    db_pool_overflow: int = Field(30, ge=0, le=1000)
    # Answers computed from stored trials (frontier, marginal) kept per API process, least recently
    # used out: a repeat is served from memory until a trial of its task finishes.
    read_cache_mb: int = Field(64, ge=0, le=65536)
    # At start-up, read the main recipe's points of the tasks with most results in the background
    # (results.warm_reads), so the first frontier after a restart is not the slow one.
    prime_reads: bool = True
    # Study points whose trials run at once per allocation (workers share them).
    max_points_in_flight: int = 4
    # An uploaded task's file: bytes are counted while it streams in, so a bigger one is refused
    # before it is parsed or held in memory; rows are counted while parsing (each row is stored).
    max_upload_bytes: int = Field(50 * 2**20, gt=0)
    max_upload_rows: int = Field(100_000, gt=0)
    # Trials one allocation may ask for (max_trials points x seeds): the schema allows 200 x 10,
    # days of a GPU; a request over this is a 422 on max_trials.
    max_trials_per_allocation: int = 400
    # Each Celery worker process serves its Prometheus metrics (trials, queue depth) on this port
    # (worker/metrics.py); 0 turns it off. Workers sharing a host (not containers) need one each.
    worker_metrics_port: int = Field(9100, ge=0, le=65535)

    # Every request but /healthz and /readyz needs `Authorization: Bearer <key>` (labelmix keys).
    # Off, requests without a key act for the team "local"; `labelmix serve` refuses to listen
    # beyond loopback with it off.
    require_api_keys: bool = False
    # Browser origins (scheme://host[:port]) allowed to call the API cross-site (CORS), comma-separated.
    # Empty: only the dashboard served by this API; other sites' state-changing requests get 403.
    cors_allow_origins: Annotated[list[str], NoDecode] = []
    # Host names served besides loopback ones when keys are not required (comma-separated); other
    # Hosts get a 400, which stops DNS rebinding (app/auth/hosts.py). Unused when keys are required.
    trusted_hosts: Annotated[list[str], NoDecode] = []
    # Networks (CIDRs, comma-separated) callbacks may reach besides public addresses: for receivers
    # inside the deployment (e.g. 10.0.0.0/8). Empty: loopback, private, link-local and every other
    # non-public address is refused (allocations.callback_targets).
    callback_allow_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = []
    # Each callback attempt (connect, send, hear the status) ends by this deadline, however slowly the
    # receiver answers; no attempt starts later than callback_give_up_after_s after the first.
    callback_attempt_deadline_s: float = Field(15.0, gt=0, le=300)
    callback_give_up_after_s: float = Field(90.0, ge=0, le=3600)
    # Name allocations' Optuna studies by task, model and budget and attach the request's terms, for
    # optuna-dashboard. Off: ids only, since the dashboard shows every team's studies to whoever reaches it.
    describe_optuna_studies: bool = False
    # Trials queued or running for one team's allocations and studies, and its uploads' weak labelers
    # still to be built, at once; past it, a 429.
    max_active_trials_per_team: int = Field(1000, gt=0)
    # A team's uploads: tasks, and rows (pool and test) over all of them; past either, a 429.
    max_tasks_per_team: int = Field(100, gt=0)
    max_stored_rows_per_team: int = Field(2_000_000, gt=0)

    @field_validator("trusted_hosts", mode="before")
    @classmethod
    def _host_list(cls, value):
        return _comma_list(value)

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        return [o.rstrip("/") for o in _comma_list(value)]

    @field_validator("callback_allow_networks", mode="before")
    @classmethod
    def _networks(cls, value):
        # Parsed once, here: a bad one is refused at start-up, naming it, and callers get networks.
        return parse_networks(_comma_list(value))

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


def _comma_list(value):
    """A comma-separated setting ("a, b,,c") as its stripped, non-empty items; a list as it is."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()


def parse_networks(values: Iterable[str]) -> list[Network]:
    """CIDRs ("10.0.0.0/8", "127.0.0.1"); a bad one raises ValueError naming it."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP network (e.g. 10.0.0.0/8 or 127.0.0.1): {exc}") from None
    return networks
