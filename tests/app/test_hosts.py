"""DNS rebinding (issue 29): without keys, only requests to a loopback name are served.

A page at evil.example whose name has been rebound to 127.0.0.1 sends `Host: evil.example:PORT` and
an Origin to match, so the cross-site guard sees a same-origin request; the host guard refuses it.
These tests clear LABELMIX_TRUSTED_HOSTS, which conftest sets for Starlette's `testserver`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.auth.hosts import host_name, is_loopback_name

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

EVIL = "http://evil.example:8000"


@pytest.fixture
def service_at(make_api, monkeypatch):
    """service_at(base_url): the API (embedded, no keys) reached under that address."""
    monkeypatch.delenv("LABELMIX_TRUSTED_HOSTS")
    api = make_api()

    def at(base_url: str) -> TestClient:
        return TestClient(api.app, base_url=base_url)

    return at


def test_a_rebound_name_gets_nothing_and_changes_nothing(service_at):
    evil = service_at(EVIL)
    same_origin = {"Origin": EVIL}
    for response in (
        evil.post("/webhook-secret/rotate", headers=same_origin),
        evil.get("/webhook-secret"),
        evil.post("/tasks", data={"dataset": "cities"}, headers=same_origin),
        evil.get("/tasks"),
    ):
        assert response.status_code == 400, response.text
        assert "evil.example" in response.json()["detail"] and "loopback" in response.json()["detail"]
    assert "cities" not in service_at("http://127.0.0.1:8000").get("/tasks").text  # the upload never ran


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "http://localhost:8765", "http://[::1]:8000",
                                      "http://127.0.0.2"])
def test_loopback_names_are_served(service_at, base_url):
    client = service_at(base_url)
    assert client.get("/webhook-secret").status_code == 200
    assert client.post("/webhook-secret/rotate", headers={"Origin": base_url}).status_code == 200


def test_an_operator_may_trust_a_name(make_api, monkeypatch):
    monkeypatch.setenv("LABELMIX_TRUSTED_HOSTS", "labelmix.lan")
    api = make_api()
    assert TestClient(api.app, base_url="http://labelmix.lan:8000").get("/webhook-secret").status_code == 200
    assert TestClient(api.app, base_url=EVIL).get("/webhook-secret").status_code == 400


def test_with_keys_required_any_host_is_served_and_the_key_decides(make_api, monkeypatch):
    monkeypatch.delenv("LABELMIX_TRUSTED_HOSTS")
    monkeypatch.setenv("LABELMIX_REQUIRE_API_KEYS", "true")
    api = make_api()
    assert TestClient(api.app, base_url="https://labelmix.example.org").get("/webhook-secret").status_code == 401


def test_host_names_are_read_as_browsers_send_them():
    assert host_name("evil.example:8000") == "evil.example"
    assert host_name("[::1]:8000") == "::1"
    assert host_name("localhost") == "localhost"
    assert all(map(is_loopback_name, ["localhost", "LOCALHOST.", "app.localhost", "127.9.9.9", "::1"]))
    assert not any(map(is_loopback_name, ["evil.example", "localhost.evil.example", "10.0.0.1", "0.0.0.0"]))
