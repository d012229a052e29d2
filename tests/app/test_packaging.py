"""labelmix as an operator installs it: a wheel, not the source tree. `labelmix migrate` from that
install (no alembic.ini, no sources beside it) builds an empty Postgres database, Optuna's schema
included."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_migrate_from_an_installed_wheel_builds_an_empty_database(tmp_path, empty_pg_url):
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(REPO_ROOT))
    wheel = next(tmp_path.glob("labelmix-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "app/migrations/env.py" in names and "app/migrations/script.py.mako" in names
    assert any(n.startswith("app/migrations/versions/0001_") for n in names)

    # A fresh venv with the wheel, not the editable install; its dependencies from this one's
    # site-packages, on the path after its own (a .pth there adds no editable finder).
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    _run(str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel))
    purelib = _run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(purelib.stdout.strip()) / "labelmix-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "LABELMIX_DATABASE_URL": empty_pg_url, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    where = _run(str(venv / "bin" / "python"), "-c", "import app; print(app.__file__)", cwd=elsewhere, env=env)
    assert where.stdout.strip().startswith(str(venv))

    _run(str(venv / "bin" / "labelmix"), "migrate", cwd=elsewhere, env=env)
    engine = create_engine(empty_pg_url)
    try:
        with engine.connect() as connection:
            head = connection.execute(text("SELECT version_num FROM labelmix_alembic_version")).scalar_one()
            optuna_tables = connection.execute(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'labelmix_optuna'")).scalar_one()
    finally:
        engine.dispose()
    assert head == sorted(p.name[:4] for p in (REPO_ROOT / "app" / "migrations" / "versions").glob("0*.py"))[-1]
    assert optuna_tables > 5
