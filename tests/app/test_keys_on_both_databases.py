"""Keyed requests on the embedded SQLite database as on Postgres: times come back in UTC, with a zone.

SQLite stores no zone and handed back naive times: every keyed request after a key's first use was a
500 (`last_used_at` compared with an aware `utcnow()`), and `created_at` left the API without an
offset. Keys are made by the real CLI against each database; nothing here trains.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.base import UTCDateTime

from conftest import api_on
from test_tasks_api import as_csv, rows, with_weak_probs


@pytest.fixture(params=["postgres", "sqlite"])
def keyed_api(request, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELMIX_REQUIRE_API_KEYS", "true")
    client = api_on(request, tmp_path)
    result = CliRunner().invoke(cli, ["keys", "create", "--team", "t", "--label", "test"])
    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {result.stdout.strip().splitlines()[-1]}"}
    registered = client.post("/tasks", data={"dataset": "capitals"}, headers=headers)  # the key's first use
    assert registered.status_code in (200, 201), registered.text
    return client, headers


def _upload(client, headers, name: str):
    return client.post("/tasks", data={"name": name}, headers=headers,
                       files={"file": ("rows.csv", as_csv(with_weak_probs(rows())), "text/csv")})


def test_a_key_works_on_every_request_not_only_the_first(keyed_api):
    client, headers = keyed_api
    for _ in range(3):
        assert client.get("/tasks/capitals", headers=headers).status_code == 200


def test_concurrent_keyed_requests_all_succeed(keyed_api):
    client, headers = keyed_api
    with ThreadPoolExecutor(4) as pool:
        reads = list(pool.map(lambda _: client.get("/tasks/capitals", headers=headers).status_code, range(4)))
        uploads = list(pool.map(lambda i: _upload(client, headers, f"mine-{i}").status_code, range(3)))
    assert reads == [200] * 4
    assert uploads == [201] * 3


def test_times_leave_the_api_with_a_zone(keyed_api):
    client, headers = keyed_api
    created = _upload(client, headers, "zoned")
    assert created.status_code == 201, created.text
    stamp = client.get("/tasks/zoned", headers=headers).json()["created_at"]
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


def test_utc_datetime_reads_and_writes_utc():
    column = UTCDateTime()
    naive = datetime(2026, 1, 2, 3, 4, 5)
    elsewhere = datetime(2026, 1, 2, 7, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert column.process_result_value(naive, None) == naive.replace(tzinfo=UTC)
    assert column.process_bind_param(elsewhere, None).tzinfo is UTC
    assert column.process_bind_param(elsewhere, None) == datetime(2026, 1, 2, 5, 4, 5, tzinfo=UTC)
    assert column.process_result_value(None, None) is None
