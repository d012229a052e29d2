"""API keys and teams, the cross-site guard, and `labelmix serve` refusing to listen openly without keys.

Keys are created through the real CLI against the test database; requests go through the real app
on Postgres. Nothing here trains: trials are recorded by the `enqueued` fixture, not run.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app as cli, is_loopback

from test_allocate_validation import VALID, enqueued  # noqa: F401  (a fixture)
from test_tasks_api import as_csv, rows, with_weak_probs

runner = CliRunner()


@pytest.fixture
def keyed(make_api, monkeypatch, enqueued):  # noqa: F811
    """An API that requires keys, and a helper making real keys with the CLI."""
    monkeypatch.setenv("LABELMIX_REQUIRE_API_KEYS", "true")
    client = make_api()

    def new_key(team: str) -> dict[str, str]:
        result = runner.invoke(cli, ["keys", "create", "--team", team, "--label", "test"])
        assert result.exit_code == 0, result.output
        return {"Authorization": f"Bearer {result.stdout.strip().splitlines()[-1]}"}

    return client, new_key


def upload(client, name: str, headers: dict | None = None, origin: str | None = None):
    extra = {**(headers or {}), **({"Origin": origin} if origin else {})}
    return client.post("/tasks", data={"name": name}, files={"file": ("rows.csv", as_csv(with_weak_probs(rows())), "text/csv")},
                       headers=extra)


def test_every_endpoint_but_health_needs_a_key(keyed):
    client, _ = keyed
    for path in ("/tasks", "/allocations", "/trials", "/tasks/cities", "/frontier/cities"):
        response = client.get(path)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "labelmix keys create" in response.json()["detail"]
    assert client.post("/allocate", json=VALID).status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/").status_code == 200  # the dashboard page, which asks for a key


def test_missing_wrong_revoked_and_other_teams_keys(keyed, table_counts):
    client, new_key = keyed
    alpha, beta = new_key("alpha"), new_key("beta")
    assert upload(client, "alpha-reviews", alpha).status_code == 201

    assert client.get("/tasks/alpha-reviews").status_code == 401  # missing
    assert client.get("/tasks/alpha-reviews", headers={"Authorization": "Bearer lmx_wrong"}).status_code == 401
    assert client.get("/tasks/alpha-reviews", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/tasks/alpha-reviews", headers=alpha).status_code == 200
    other = client.get("/tasks/alpha-reviews", headers=beta)
    assert other.status_code == 404  # another team's task does not exist for it
    assert "alpha-reviews" not in other.json()["detail"].split("registered:")[1]  # nor is it listed as known
    assert "alpha-reviews" not in [t["name"] for t in client.get("/tasks", headers=beta).json()]

    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0 and "alpha" in listed.stdout and "beta" in listed.stdout
    shown = alpha["Authorization"].split()[1][:12]
    assert runner.invoke(cli, ["keys", "revoke", shown]).exit_code == 0
    assert client.get("/tasks/alpha-reviews", headers=alpha).status_code == 401  # revoked
    assert runner.invoke(cli, ["keys", "revoke", "lmx_nosuchkey"]).exit_code == 1
    assert table_counts("api_keys") == {"api_keys": 2}  # revoking keeps the row (when, for the record)


def test_keys_are_stored_only_as_digests(keyed, sql_on, clean_db):
    _, new_key = keyed
    key = new_key("alpha")["Authorization"].split()[1]
    [(digest, shown)] = sql_on(clean_db, "SELECT key_digest, shown FROM api_keys")
    assert key not in digest and len(digest) == 64 and key.startswith(shown) and len(shown) < len(key) / 3


def test_a_team_name_is_checked():
    result = runner.invoke(cli, ["keys", "create", "--team", "Not A Team!"])
    assert result.exit_code == 2 and "--team" in result.output


def test_built_in_tasks_are_shared_and_allocations_are_a_teams_own(keyed):
    client, new_key = keyed
    alpha, beta = new_key("alpha"), new_key("beta")
    assert client.post("/tasks", data={"dataset": "cities"}, headers=alpha).status_code in (200, 201)
    assert client.get("/tasks/cities", headers=beta).status_code == 200

    made = client.post("/allocate", json=VALID, headers=alpha)
    assert made.status_code == 202, made.text
    allocation = made.json()["id"]
    assert client.get(f"/allocations/{allocation}", headers=alpha).status_code == 200
    assert client.get(f"/allocations/{allocation}", headers=beta).status_code == 404
    assert allocation not in [a["id"] for a in client.get("/allocations", headers=beta).json()["items"]]
    # Trials on a built-in task are the shared cache: both teams read them.
    trial = made.json()["trials"][0]["id"]
    assert client.get(f"/trials/{trial}", headers=beta).status_code == 200


def test_an_allocation_on_another_teams_task_is_404(keyed):
    client, new_key = keyed
    alpha, beta = new_key("alpha"), new_key("beta")
    assert upload(client, "alpha-reviews", alpha).status_code == 201
    response = client.post("/allocate", json={**VALID, "task": "alpha-reviews"}, headers=beta)
    assert response.status_code == 404, response.text


@pytest.mark.both_databases
def test_without_required_keys_requests_act_for_the_local_team(api, enqueued):  # noqa: F811
    assert upload(api, "mine").status_code == 201
    assert api.get("/tasks/mine").status_code == 200
    # A key that is sent is still checked: a typo is not silently ignored.
    assert api.get("/tasks/mine", headers={"Authorization": "Bearer lmx_typo"}).status_code == 401


def test_a_cross_site_form_post_is_refused_even_without_keys(api, table_counts):
    response = upload(api, "from-evil", origin="https://evil.example")
    assert response.status_code == 403 and "evil.example" in response.json()["detail"]
    assert table_counts("tasks") == {"tasks": 0}
    assert upload(api, "same-site", origin="http://testserver").status_code == 201  # the dashboard's own
    assert upload(api, "no-origin").status_code == 201  # curl and scripts send none
    assert api.get("/tasks", headers={"Origin": "https://evil.example"}).status_code == 200  # reads are not guarded


def test_allow_listed_origins_get_cors_and_may_post(make_api, monkeypatch):
    monkeypatch.setenv("LABELMIX_CORS_ALLOW_ORIGINS", "https://planning.example.com")
    client = make_api()
    preflight = client.options("/tasks", headers={
        "Origin": "https://planning.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://planning.example.com"
    assert "access-control-allow-credentials" not in preflight.headers  # keys, never cookies
    assert upload(client, "planned", origin="https://planning.example.com").status_code == 201
    assert upload(client, "elsewhere", origin="https://elsewhere.example.com").status_code == 403


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("0.0.0.0", False),
    ("192.168.1.5", False), ("example.com", False),
])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_refuses_an_open_address_without_keys(monkeypatch):
    monkeypatch.delenv("LABELMIX_REQUIRE_API_KEYS", raising=False)
    from app.config import get_settings

    get_settings.cache_clear()
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "LABELMIX_REQUIRE_API_KEYS" in result.output and "keys create" in result.output


def test_a_team_past_its_trial_limit_gets_429(keyed, monkeypatch, table_counts):
    client, new_key = keyed
    monkeypatch.setenv("LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM", "6")
    from app.config import get_settings

    get_settings.cache_clear()
    alpha, beta = new_key("alpha"), new_key("beta")
    assert client.post("/allocate", json=VALID, headers=alpha).status_code == 202  # 2 points x 2 seeds queued
    refused = client.post("/allocate", json={**VALID, "budget": 60}, headers=alpha)  # 4 more: 8 > 6
    assert refused.status_code == 429, refused.text
    assert "limit of 6" in refused.json()["detail"] and "LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM" in refused.json()["detail"]
    assert table_counts("allocations") == {"allocations": 1}  # nothing half-made
    # The limit is each team's own.
    assert client.post("/allocate", json={**VALID, "budget": 60}, headers=beta).status_code == 202


def test_studies_count_against_the_limit_too(keyed, monkeypatch, table_counts):
    client, new_key = keyed
    monkeypatch.setenv("LABELMIX_MAX_ACTIVE_TRIALS_PER_TEAM", "3")
    from app.config import get_settings

    get_settings.cache_clear()
    alpha = new_key("alpha")
    study = {"task": "cities", "budgets": [8], "weak_shares": [0, 1], "seeds": [0]}  # 2 trials
    first = client.post("/studies", json=study, headers=alpha)
    assert first.status_code == 202
    refused = client.post("/studies", json={**study, "seeds": [1]}, headers=alpha)  # 2 more: 4 > 3
    assert refused.status_code == 429, refused.text
    assert "would have 4" in refused.json()["detail"]
    assert table_counts("grid_studies", "trials") == {"grid_studies": 1, "trials": 2}  # nothing stored
    # Refused before its rows were written: the id sequence did not move either (it used to insert
    # the study's trials, then roll them back).
    accepted = client.post("/studies", json={**study, "budgets": [12]}, headers=new_key("gamma")).json()
    last_id = max(t for p in first.json()["points"] for t in p["trial_ids"])
    assert min(t for p in accepted["points"] for t in p["trial_ids"]) == last_id + 1, accepted["points"]
    # ... and a study's queued trials count for the team's next allocation.
    assert client.post("/allocate", json={**VALID, "max_trials": 1, "seeds": [5, 6]}, headers=alpha).status_code == 429
