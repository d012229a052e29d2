"""The one thing pyproject.toml cannot say: the migrations live in the checkout's top-level alembic/
(where Alembic projects keep them) and install as the package app.migrations, so `labelmix migrate`
runs from an installed wheel. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

MIGRATIONS = {"app.migrations": "alembic", "app.migrations.versions": "alembic/versions"}

setup(
    packages=find_namespace_packages(include=["app", "app.*", "worker", "worker.*"]) + list(MIGRATIONS),
    package_dir=MIGRATIONS,
)
