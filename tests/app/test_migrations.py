"""Alembic builds the app's schema on empty databases and lives beside Optuna's tables."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from app.allocations.search import OPTUNA_SCHEMA, optuna_storage
from app.db import models  # noqa: F401  (registers the tables)
from app.db.base import Base

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
APP_TABLES = {
    "tasks", "examples", "trials", "allocations", "study_points", "study_point_trials", "grid_studies", "api_keys",
    "point_aggregates", "team_webhook_secrets",
}


def head_revision() -> str:
    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


def tables_and_version(url: str) -> tuple[set[str], list[str]]:
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            versions = [row[0] for row in conn.execute(text("SELECT version_num FROM labelmix_alembic_version"))]
    finally:
        engine.dispose()
    return tables, versions


def test_model_tables_are_the_expected_ones():
    # Guards the lists these tests check against: a new model table must come with a migration.
    assert set(Base.metadata.tables) == APP_TABLES


def test_upgrade_head_builds_every_table_on_empty_postgres(empty_pg_url, migrate, schema_check):
    migrate(empty_pg_url)

    tables, versions = tables_and_version(empty_pg_url)
    assert APP_TABLES <= tables
    assert "labelmix_alembic_version" in tables
    assert "alembic_version" not in tables  # that name is Optuna's
    assert tables == APP_TABLES | {"labelmix_alembic_version"}
    assert versions == [head_revision()]
    schema_check(empty_pg_url)  # models and migrations agree

    migrate(empty_pg_url)  # a second upgrade is a no-op
    assert tables_and_version(empty_pg_url)[1] == [head_revision()]


def test_upgrade_head_builds_every_table_on_empty_sqlite(tmp_path, migrate, schema_check):
    url = f"sqlite:///{tmp_path / 'labelmix.sqlite'}"
    migrate(url)

    tables, versions = tables_and_version(url)
    assert tables == APP_TABLES | {"labelmix_alembic_version"}
    assert versions == [head_revision()]
    schema_check(url)


def test_migrated_postgres_schema_has_the_cache_constraints(pg_url, sql_on):
    # The trial cache relies on a unique key (ON CONFLICT (key)) and cascading deletes.
    uniques = {
        row[0]
        for row in sql_on(
            pg_url,
            "SELECT conname FROM pg_constraint WHERE contype = 'u' AND conrelid = 'trials'::regclass",
        )
    }
    assert "uq_trials_key" in uniques
    cascades = sql_on(
        pg_url,
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'c' "
        "AND conrelid = 'study_point_trials'::regclass",
    )
    assert cascades == [(2,)]


def _optuna_study(url: str, name: str) -> None:
    """A study created the way the app creates one (its storage, on the app's own database)."""
    study = optuna.create_study(study_name=name, storage=optuna_storage(url), direction="maximize")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    study.tell(trial, 0.5)


def _optuna_versions(url: str) -> list[str]:
    # Optuna keeps its tables, its `trials` among them, in a schema of its own (see search.py).
    return [row[0] for row in _rows(url, f"SELECT version_num FROM {OPTUNA_SCHEMA}.alembic_version")]


def _rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("optuna_first", [True, False], ids=["optuna-then-app", "app-then-optuna"])
def test_app_migrations_and_optuna_share_a_postgres_database(empty_pg_url, migrate, schema_check, optuna_first):
    if optuna_first:
        _optuna_study(empty_pg_url, "first-study")
        migrate(empty_pg_url)
    else:
        migrate(empty_pg_url)
        _optuna_study(empty_pg_url, "first-study")
    optuna_versions = _optuna_versions(empty_pg_url)
    assert optuna_versions and optuna_versions != [head_revision()]

    # With Optuna's tables (and its own alembic_version) present, the app's commands still work.
    migrate(empty_pg_url)
    schema_check(empty_pg_url)

    tables, versions = tables_and_version(empty_pg_url)
    assert tables == APP_TABLES | {"labelmix_alembic_version"}  # the app's schema holds only its own
    assert versions == [head_revision()]
    app_trial_columns = {
        row[0]
        for row in _rows(
            empty_pg_url,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'trials'",
        )
    }
    assert {"key", "spec", "selection_accuracy", "holdout_accuracy"} <= app_trial_columns

    # Optuna's version row is untouched, and its studies still load and take new trials.
    assert _optuna_versions(empty_pg_url) == optuna_versions
    storage = optuna_storage(empty_pg_url)
    study = optuna.load_study(study_name="first-study", storage=storage)
    assert [t.value for t in study.trials] == [0.5]
    optuna.create_study(study_name="second-study", storage=storage).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=1
    )
    assert len(optuna.load_study(study_name="second-study", storage=storage).trials) == 1
    migrate(empty_pg_url)
    schema_check(empty_pg_url)


def test_optuna_tables_are_created_once_when_first_uses_race(migrate, empty_pg_url):
    # Four workers' first allocation on a fresh database at the same moment: none may fail.
    from concurrent.futures import ThreadPoolExecutor

    migrate(empty_pg_url)
    with ThreadPoolExecutor(4) as pool:
        storages = list(pool.map(lambda _: optuna_storage.__wrapped__(empty_pg_url), range(4)))
    assert len(storages) == 4
    optuna.create_study(storage=storages[0], study_name="after-the-race")
    for storage in storages:
        storage.remove_session()
        storage.engine.dispose()


def test_labelmix_migrate_creates_optunas_tables_for_a_dashboard_on_a_fresh_database(empty_pg_url, monkeypatch):
    """optuna-dashboard reads Optuna's schema before any allocation has created it (the compose
    file's URL, which creates nothing): `labelmix migrate` makes it."""
    from conftest import clear_app_caches
    from typer.testing import CliRunner

    from app.cli import app as cli

    monkeypatch.setenv("LABELMIX_DATABASE_URL", empty_pg_url)
    clear_app_caches()
    optuna_storage.cache_clear()
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert _rows(empty_pg_url, f"SELECT count(*) FROM {OPTUNA_SCHEMA}.version_info") == [(1,)]
    # As optuna-dashboard opens it: the schema on the search path, no table created on the way.
    dashboard_url = f"{empty_pg_url}?options=-csearch_path%3D{OPTUNA_SCHEMA}"
    storage = optuna.storages.RDBStorage(dashboard_url, skip_table_creation=True)
    try:
        assert storage.get_all_studies() == []
    finally:
        storage.engine.dispose()
    clear_app_caches()
