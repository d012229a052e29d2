"""labelmix as an operator installs it: a wheel, not the source tree. `labelmix migrate` from that
install (no alembic.ini, no sources beside it) builds an empty Postgres database, Optuna's schema
included, and optuna-dashboard then starts on that database, as docker-compose.yml runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from conftest import create_pg_database, drop_pg_database, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@dataclass
class Installed:
    wheel: Path
    venv: Path
    env: dict[str, str]  # LABELMIX_DATABASE_URL: the database `labelmix migrate` built
    elsewhere: Path  # a working directory with no sources in it


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel, built once for this module, in a fresh venv, and `labelmix migrate` run from it
    on an empty database (dropped at the end)."""
    tmp_path = tmp_path_factory.mktemp("packaging")
    url = create_pg_database()
    try:
        _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
             str(REPO_ROOT))
        wheel = next(tmp_path.glob("labelmix-*.whl"))
        # A fresh venv with the wheel, not the editable install; its dependencies from this one's
        # site-packages, on the path after its own (a .pth there adds no editable finder).
        venv = tmp_path / "venv"
        _run(sys.executable, "-m", "venv", str(venv))
        _run(str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel))
        purelib = _run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        (Path(purelib.stdout.strip()) / "labelmix-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        env = {**os.environ, "LABELMIX_DATABASE_URL": url, "HF_HUB_OFFLINE": "1"}
        env.pop("PYTHONPATH", None)
        _run(str(venv / "bin" / "labelmix"), "migrate", cwd=elsewhere, env=env)
        yield Installed(wheel, venv, env, elsewhere)
    finally:
        drop_pg_database(url)


@pytest.mark.slow
def test_migrate_from_an_installed_wheel_builds_an_empty_database(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    # alembic/ in the checkout, app.migrations in the wheel (setup.py)
    assert "app/migrations/env.py" in names and "app/migrations/script.py.mako" in names
    assert any(n.startswith("app/migrations/versions/0001_") for n in names)
    where = _run(str(installed.venv / "bin" / "python"), "-c", "import app; print(app.__file__)",
                 cwd=installed.elsewhere, env=installed.env)
    assert where.stdout.strip().startswith(str(installed.venv))  # migrate ran this install, not the checkout

    engine = create_engine(installed.env["LABELMIX_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            head = connection.execute(text("SELECT version_num FROM labelmix_alembic_version")).scalar_one()
            optuna_tables = connection.execute(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'labelmix_optuna'")).scalar_one()
    finally:
        engine.dispose()
    assert head == sorted(p.name[:4] for p in (REPO_ROOT / "alembic" / "versions").glob("0*.py"))[-1]
    assert optuna_tables > 5


@pytest.mark.slow
def test_the_wheel_holds_the_product_not_the_research_harness(installed):
    """Benchmarks, replays, calibration and the surface report live in the checkout's bench/ and are
    not installed (issue 30); the installed service still has every command it documents."""
    names = zipfile.ZipFile(installed.wheel).namelist()
    packages = {n.split("/")[0] for n in names if not n.startswith("labelmix-")}
    assert packages == {"app", "worker"}, packages
    research = [n for n in names if "/bench/" in n or "calibration/" in n or "surface_report" in n]
    assert not research, research
    assert any(n.startswith("app/stats/") for n in names) and "app/jobs.py" in names
    usage = _run(str(installed.venv / "bin" / "labelmix"), "--help", cwd=installed.elsewhere, env=installed.env)
    assert "calibrate" not in usage.stdout and "study" in usage.stdout


@pytest.mark.slow
def test_optuna_dashboard_starts_on_the_migrated_database(installed, tmp_path):
    """On a fresh stack it exited with `relation "version_info" does not exist` (Optuna's schema was
    made at the first allocation). Its storage URL as compose gives it: Optuna's schema on the search
    path (compose's image has psycopg2; this venv, psycopg 3)."""
    storage = installed.env["LABELMIX_DATABASE_URL"] + "?options=-csearch_path%3Dlabelmix_optuna"
    port = free_port()
    log_path = tmp_path / "optuna-dashboard.log"
    with open(log_path, "wb") as log:
        dashboard = subprocess.Popen(
            [str(Path(sys.executable).parent / "optuna-dashboard"), storage,
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=installed.elsewhere,
        )
    def log_text() -> str:
        return log_path.read_text(errors="replace")

    try:
        base, deadline, page = f"http://127.0.0.1:{port}", time.monotonic() + 60, None
        while page is None and time.monotonic() < deadline:
            assert dashboard.poll() is None, f"optuna-dashboard exited:\n{log_text()}"
            try:
                # `/` sends the browser on to /dashboard, the page.
                page = httpx.get(f"{base}/", follow_redirects=True, timeout=5)
            except httpx.TransportError:  # not listening yet
                time.sleep(0.5)
        assert page is not None, f"optuna-dashboard did not answer in 60 s:\n{log_text()}"
        assert page.status_code == 200, page.text
        studies = httpx.get(f"{base}/api/studies", timeout=10)  # read from Optuna's tables in that schema
        assert studies.status_code == 200 and studies.json()["study_summaries"] == [], studies.text
    finally:
        dashboard.terminate()
        try:
            dashboard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
