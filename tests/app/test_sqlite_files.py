"""The embedded database as files: after the API stops, its file alone holds the data (the
write-ahead log is checkpointed), and `labelmix backup` copies it consistently while it runs."""

from __future__ import annotations

import shutil
import sqlite3

from fastapi.testclient import TestClient
from typer.testing import CliRunner


def _task_names(path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT name FROM tasks ORDER BY name")]


def test_the_file_alone_holds_the_data_once_the_api_stops(tmp_path, configure, migrate):
    db = tmp_path / "labelmix.sqlite"
    url = f"sqlite:///{db}"
    migrate(url)
    configure(url)
    from app.main import create_app

    with TestClient(create_app()) as api:
        assert api.post("/tasks", data={"dataset": "capitals"}).status_code == 201
        assert (tmp_path / "labelmix.sqlite-wal").stat().st_size > 0  # written through the log
    copied = tmp_path / "copied.sqlite"
    shutil.copy(db, copied)  # the file only, as a user copying it would
    assert _task_names(copied) == ["capitals"]


def test_backup_copies_a_live_database_and_refuses_what_it_cannot(tmp_path, configure, migrate):
    from app.cli import app as cli

    db = tmp_path / "labelmix.sqlite"
    url = f"sqlite:///{db}"
    migrate(url)
    configure(url)
    from app.main import create_app

    with TestClient(create_app()) as api:  # running: the data is still in the log
        assert api.post("/tasks", data={"dataset": "capitals"}).status_code == 201
        copy = tmp_path / "backups" / "copy.sqlite"
        done = CliRunner().invoke(cli, ["backup", str(copy)])
        assert done.exit_code == 0, done.output
        assert "bytes" in done.output and _task_names(copy) == ["capitals"]
        assert not (tmp_path / "backups" / "copy.sqlite-wal").exists()  # one self-contained file

        again = CliRunner().invoke(cli, ["backup", str(copy)])
        assert again.exit_code == 2 and "exists" in again.output
    configure("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    refused = CliRunner().invoke(cli, ["backup", str(tmp_path / "pg.sqlite")])
    assert refused.exit_code == 2 and "pg_dump" in refused.output
