"""Alembic environment: the app's tables only, under its own version table.

Optuna's RDBStorage keeps an `alembic_version` table of its own in the same database; the app's
migrations track themselves in `labelmix_alembic_version` so the two never fight.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from app.config import get_settings
from app.db import models  # noqa: F401  (registers the tables on Base.metadata)
from app.db.base import Base
from app.db.session import make_engine

VERSION_TABLE = "labelmix_alembic_version"
APP_TABLES = set(Base.metadata.tables)

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def _only_app_tables(obj, name, type_, reflected, compare_to) -> bool:
    # Autogenerate must not propose dropping Optuna's tables, which share the database.
    return type_ != "table" or name in APP_TABLES


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_object=_only_app_tables,
        render_as_batch=True,  # SQLite alters tables by copying them
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=get_settings().database_url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = context.config.attributes.get("connection") or make_engine(get_settings().database_url)
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
