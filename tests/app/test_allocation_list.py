"""GET /allocations: a team's allocations, filtered in SQL (Postgres JSONB and SQLite JSON alike),
newest first, one page at a time by an opaque cursor.

Nothing here trains: what would go to the workers is recorded instead, so each allocation stays queued.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from conftest import api_on

from test_allocate_validation import enqueued  # noqa: F401  (a fixture)
from test_auth import keyed  # noqa: F401  (a fixture)

ASK = {"task": "cities", "weak_cost": 0.1, "gold_cost": 1, "methods": ["seq_sft"], "max_trials": 2}


@pytest.fixture(params=["postgres", "sqlite"])
def client(request, enqueued, tmp_path):  # noqa: F811
    """The API on either database: the budget filter reads JSON, which each stores its own way."""
    return api_on(request, tmp_path)


def allocate(client, budget: float, label: str | None = None, task: str = "cities") -> str:
    body = {**ASK, "task": task, "budget": budget, **({"label": label} if label else {})}
    response = client.post("/allocate", json=body)
    assert response.status_code in (200, 202), response.text
    return response.json()["id"]


def listed(client, **params) -> list[str]:
    response = client.get("/allocations", params=params)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["items"]]


def test_every_filter_narrows_the_list(client):
    small = allocate(client, 16, "Pilot for Q3")
    middle = allocate(client, 64, "q3 PILOT, second try")
    large = allocate(client, 256, "production")
    everything = listed(client)
    assert everything == [large, middle, small]  # newest first

    assert listed(client, budget_min=64) == [large, middle]
    assert listed(client, budget_max=64) == [middle, small]
    assert listed(client, budget_min=20, budget_max=100) == [middle]
    assert listed(client, label="pilot") == [middle, small]  # a substring, any case
    assert listed(client, label="PRODUCTION") == [large]
    assert listed(client, label="50%") == []  # % is the lead's text, not a wildcard
    assert listed(client, task="cities") == everything
    assert listed(client, task="capitals") == []
    states = {a["status"] for a in client.get("/allocations").json()["items"]}
    assert states == {"running"}  # asked, nothing trained: each waits on its first trials
    assert listed(client, status="running") == everything
    assert listed(client, status="done") == [] and listed(client, status="queued") == []

    page = client.get("/allocations", params={"label": "production"}).json()["items"]
    assert page[0]["label"] == "production" and page[0]["request"]["budget"] == 256 and page[0]["created_at"]


def test_created_after_and_before_bound_the_creation_time(client):
    first = allocate(client, 16)
    created = datetime.fromisoformat(client.get(f"/allocations/{first}").json()["created_at"])
    second = allocate(client, 64)
    just_after = (created + timedelta(microseconds=1)).isoformat()
    assert listed(client, created_after=just_after) == [second]
    assert listed(client, created_before=just_after) == [first]
    assert listed(client, created_after=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()) == []


def test_the_cursor_walks_every_allocation_once_even_while_new_ones_arrive(client):
    made = [allocate(client, budget) for budget in (8, 16, 32, 64, 128)]
    first = client.get("/allocations", params={"limit": 2}).json()
    assert [a["id"] for a in first["items"]] == made[:2:-1][:2] and first["next_cursor"]
    newer = allocate(client, 512)  # created between pages: the next pages neither repeat nor skip a row
    second = client.get("/allocations", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get("/allocations", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    walked = [a["id"] for page in (first, second, third) for a in page["items"]]
    assert walked == made[::-1] and newer not in walked
    assert third["next_cursor"] is None

    # The cursor keeps to the filters it is used with.
    big = client.get("/allocations", params={"limit": 1, "budget_min": 30}).json()
    rest = client.get("/allocations", params={"limit": 5, "budget_min": 30, "cursor": big["next_cursor"]}).json()
    assert [a["id"] for a in big["items"] + rest["items"]] == [newer, made[4], made[3], made[2]]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "finished"}, "status"),
        ({"budget_min": "lots"}, "budget_min"),
        ({"budget_max": -1}, "budget_max"),
        ({"budget_min": 100, "budget_max": 10}, "budget_max"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-01-02T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"}, "created_before"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"id": 1}').decode()}, "cursor"),
        ({"label": ""}, "label"),
        ({"label": "nul\x00here"}, "label"),
        ({"limit": 0}, "limit"),
    ],
    ids=["status", "budget-word", "budget-negative", "budget-range-empty", "created-word", "created-range-empty",
         "cursor-garbage", "cursor-without-time", "label-empty", "label-nul", "limit-0"],
)
def test_a_bad_filter_is_422_naming_it(api, params, field):
    response = api.get("/allocations", params=params)
    assert response.status_code == 422, response.text
    assert any(d["loc"] == ["query", field] for d in response.json()["detail"]), response.json()


def test_only_the_callers_team_is_listed(keyed):  # noqa: F811
    client, new_key = keyed
    alpha, beta = new_key("alpha"), new_key("beta")
    made = client.post("/allocate", json={**ASK, "budget": 16, "label": "alpha's"}, headers=alpha)
    assert made.status_code == 202, made.text
    assert [a["id"] for a in client.get("/allocations", headers=alpha).json()["items"]] == [made.json()["id"]]
    assert client.get("/allocations", headers=beta).json() == {"items": [], "next_cursor": None}
    assert client.get("/allocations", params={"label": "alpha"}, headers=beta).json()["items"] == []
