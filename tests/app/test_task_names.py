"""Task names are a team's own (issue 29): two teams may each upload a "reviews", neither learns that
the other has one, and their trials never share a key (a shared key would serve one team's results,
trained on its data, to the other). On Postgres and on the embedded SQLite; nothing here trains."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.models import Task
from app.db.session import session_scope

from conftest import api_on
from test_allocate_validation import VALID, enqueued  # noqa: F401  (a fixture)
from test_tasks_api import N_PER_CLASS, as_csv, rows, with_weak_probs


@pytest.fixture(params=["postgres", "sqlite"])
def two_teams(request, tmp_path, monkeypatch, enqueued):  # noqa: F811
    monkeypatch.setenv("LABELMIX_REQUIRE_API_KEYS", "true")
    client = api_on(request, tmp_path)

    def key(team: str) -> dict[str, str]:
        made = CliRunner().invoke(cli, ["keys", "create", "--team", team])
        assert made.exit_code == 0, made.output
        return {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}

    return client, key("alpha"), key("beta")


def upload(client, headers, name: str, n_per_class: int = N_PER_CLASS):
    data = as_csv(with_weak_probs(rows(n_per_class, n_per_class)))
    return client.post("/tasks", data={"name": name}, headers=headers, files={"file": ("rows.csv", data, "text/csv")})


def test_two_teams_each_upload_their_own_reviews(two_teams):
    client, alpha, beta = two_teams
    mine = upload(client, alpha, "reviews")
    assert mine.status_code == 201, mine.text
    # Before: 409 "already exists", which told beta that some team has a "reviews" and kept the name from it.
    theirs = upload(client, beta, "reviews", n_per_class=N_PER_CLASS + 20)
    assert theirs.status_code == 201, theirs.text
    assert mine.json()["name"] == theirs.json()["name"] == "reviews"
    assert theirs.json()["n_pool"] + theirs.json()["n_test"] == mine.json()["n_pool"] + mine.json()["n_test"] + 40

    for headers, created in ((alpha, mine), (beta, theirs)):
        shown = client.get("/tasks/reviews", headers=headers).json()
        assert (shown["name"], shown["n_pool"]) == ("reviews", created.json()["n_pool"])
        assert [t["name"] for t in client.get("/tasks", headers=headers).json()].count("reviews") == 1
    again = upload(client, alpha, "reviews")
    assert again.status_code == 409 and "already exists" in again.json()["detail"]  # a team's names stay unique


def test_the_same_name_never_shares_a_trial(two_teams):
    client, alpha, beta = two_teams
    for headers in (alpha, beta):
        assert upload(client, headers, "reviews").status_code == 201  # the same rows, even
    request = {**VALID, "task": "reviews", "weak_labeler": "task"}
    made = {team: client.post("/allocate", json=request, headers=headers) for team, headers in (("alpha", alpha), ("beta", beta))}
    assert all(m.status_code == 202 for m in made.values()), [m.text for m in made.values()]
    trials = {team: {t["id"] for t in m.json()["trials"]} for team, m in made.items()}
    assert trials["alpha"] and trials["beta"] and not trials["alpha"] & trials["beta"]
    specs = {team: client.get(f"/trials/{min(ids)}", headers=(alpha if team == "alpha" else beta)).json()["spec"]
             for team, ids in trials.items()}
    assert specs["alpha"]["task"] == "alpha.reviews" and specs["beta"]["task"] == "beta.reviews"
    listed = client.get("/allocations", params={"task": "reviews"}, headers=alpha).json()["items"]
    assert [a["id"] for a in listed] == [made["alpha"].json()["id"]]
    assert listed[0]["task"] == "reviews"


def test_deleting_a_teams_reviews_leaves_the_others(two_teams):
    client, alpha, beta = two_teams
    for headers in (alpha, beta):
        assert upload(client, headers, "reviews").status_code == 201
    gone = client.delete("/tasks/reviews", headers=alpha)
    assert gone.status_code == 200, gone.text
    assert client.get("/tasks/reviews", headers=alpha).status_code == 404
    assert client.get("/tasks/reviews", headers=beta).status_code == 200


def test_an_upload_stored_before_names_were_per_team_is_still_its_teams(two_teams):
    client, alpha, beta = two_teams
    assert upload(client, alpha, "reviews").status_code == 201
    with session_scope() as session:  # as migration 0013 left it: the plain name
        session.execute(update(Task).where(Task.name == "alpha.reviews").values(name="reviews"))
    assert client.get("/tasks/reviews", headers=alpha).json()["name"] == "reviews"
    assert upload(client, alpha, "reviews").status_code == 409
    assert client.get("/tasks/reviews", headers=beta).status_code == 404
    assert upload(client, beta, "reviews").status_code == 201
    with session_scope() as session:
        assert sorted(session.scalars(select(Task.name).where(Task.team.is_not(None)))) == ["beta.reviews", "reviews"]
