"""Issue 10: every request parameter is bounded, models are named (never paths), weak labelers are
checked when posted, odd ids are 404s or 422s (never a 500), and a failed allocation leaves no
Optuna study behind.

Nothing here trains: the dispatcher records what it would send to the workers.
"""

from __future__ import annotations

import json
import shutil

import optuna
import pytest

from worker.engine.models import resolve_model

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

ALLOCATION = {"task": "cities", "budget": 50, "weak_cost": 0.1, "gold_cost": 1, "methods": ["seq_sft"], "max_trials": 2}
STUDY = {"task": "cities", "budgets": [8], "weak_shares": [0, 1], "seeds": [0]}
PRICES = {"weak_cost": 0.1, "gold_cost": 1}
ODD_MODELS = ["/etc", "/nonexistent", "~\u0000", "x" * 10_000]


@pytest.fixture
def enqueued(monkeypatch):
    """Record what would be sent to the workers instead of running it."""
    from app.dispatch import InProcessDispatcher

    calls: list = []
    monkeypatch.setattr(InProcessDispatcher, "enqueue_trials", lambda self, ids: calls.extend(ids))
    monkeypatch.setattr(InProcessDispatcher, "enqueue_advance", lambda self, a: calls.append(a))
    return calls


@pytest.fixture
def client(api, enqueued):
    return api


@pytest.fixture
def optuna_studies():
    """optuna_studies(): the names of every Optuna study in the test database (other tests' included)."""
    from app.allocations.search import optuna_storage
    from app.config import get_settings

    return lambda: set(optuna.study.get_all_study_names(optuna_storage(get_settings().optuna_storage_url)))


def post(client, url: str, body: dict):
    # json.dumps writes NaN and Infinity as JSON's common extension does; the service must refuse them.
    return client.post(url, content=json.dumps(body), headers={"content-type": "application/json"})


def locs_of(response, status: int = 422) -> list[list]:
    assert response.status_code == status, response.text
    return [d["loc"] for d in response.json()["detail"]]


def assert_names(response, where: str, *field) -> None:
    path = [where, *field]
    assert any(loc[: len(path)] == path for loc in locs_of(response)), response.text


# --- 1. bounds on every parameter a request sets ----------------------------------------------------

INF, NAN = float("inf"), float("nan")
BODY_CASES = {
    "max_examples_per_stage-1e12": ({"params": {"max_examples_per_stage": 10**12, "patience": 10**9, "min_delta": 0}},
                                    ("params", "max_examples_per_stage")),
    "patience-1e9": ({"params": {"patience": 10**9}}, ("params", "patience")),
    "min_delta-NaN": ({"params": {"min_delta": NAN}}, ("params", "min_delta")),
    "min_delta-2": ({"params": {"min_delta": 2}}, ("params", "min_delta")),
    "lr-Infinity": ({"params": {"lr": INF}}, ("params", "lr")),
    "budget-Infinity": ({"budget": INF}, ("budget",)),
    "budget-NaN": ({"budget": NAN}, ("budget",)),
    "budget-1e308": ({"budget": 1e308}, ("budget",)),
    "budgets-1e308": ({"budget": None, "budgets": [16, 1e308]}, ("budgets",)),
    "weak_cost-5e-324": ({"weak_cost": 5e-324}, ("weak_cost",)),
    "weak_cost-1e308": ({"weak_cost": 1e308}, ("weak_cost",)),
    "gold_cost-Infinity": ({"gold_cost": INF}, ("gold_cost",)),
    "gold_cost-NaN": ({"gold_cost": NAN}, ("gold_cost",)),
    "seeds-2**40": ({"seeds": [2**40]}, ("seeds",)),
    "seeds-negative": ({"seeds": [-1]}, ("seeds",)),
    "task-NUL": ({"task": "\u0000"}, ("task",)),
    "task-too-long": ({"task": "t" * 101}, ("task",)),
}


@pytest.mark.parametrize(("change", "field"), BODY_CASES.values(), ids=BODY_CASES.keys())
def test_allocation_bounds(client, table_counts, enqueued, optuna_studies, change, field):
    before = optuna_studies()
    assert_names(post(client, "/allocate", {**ALLOCATION, **change}), "body", *field)
    assert table_counts() == {t: 0 for t in table_counts()}  # refused before even the task is registered
    assert enqueued == [] and optuna_studies() == before


def test_points_times_seeds_is_bounded_by_a_setting(client, monkeypatch, table_counts):
    response = post(client, "/allocate", {**ALLOCATION, "max_trials": 200, "seeds": list(range(10))})
    assert_names(response, "body", "max_trials")
    assert "2000 trials" in response.text and "limit of 400" in response.text

    from app.config import get_settings

    monkeypatch.setenv("LABELMIX_MAX_TRIALS_PER_ALLOCATION", "3")
    get_settings.cache_clear()
    assert_names(post(client, "/allocate", {**ALLOCATION, "max_trials": 2, "seeds": [0, 1]}), "body", "max_trials")
    assert post(client, "/allocate", {**ALLOCATION, "max_trials": 3, "seeds": [0]}).status_code == 202
    assert table_counts("allocations") == {"allocations": 1}


def test_a_budget_too_small_to_buy_a_label_is_422(client, table_counts, optuna_studies):
    # 5e-324 passes the schema (it is above 0) and is refused by the search: it buys nothing.
    before = optuna_studies()
    response = post(client, "/allocate", {**ALLOCATION, "budget": 5e-324})
    assert_names(response, "body", "budget")
    assert "too small" in response.text
    assert table_counts("allocations", "trials") == {"allocations": 0, "trials": 0}
    assert optuna_studies() == before


STUDY_CASES = {
    "patience-1e9": ({"params": {"patience": 10**9}}, "params"),
    "seeds-2**40": ({"seeds": [2**40]}, "seeds"),
    "budgets-1e308": ({"budgets": [8, 1e308]}, "budgets"),
    "budgets-NaN": ({"budgets": [NAN]}, "budgets"),
    "weak_cost-5e-324": ({"weak_cost": 5e-324}, "weak_cost"),
    "gold_cost-Infinity": ({"gold_cost": INF}, "gold_cost"),
    "weak_shares-NaN": ({"weak_shares": [0, NAN]}, "weak_shares"),
    "model-/etc": ({"model": "/etc"}, "model"),
    "weak_labeler-bogus": ({"weak_labeler": "bogus"}, "weak_labeler"),
    "weak_labeler-sft-path": ({"weak_labeler": "sft:/etc"}, "weak_labeler"),
}


@pytest.mark.parametrize(("change", "field"), STUDY_CASES.values(), ids=STUDY_CASES.keys())
def test_study_bounds(client, table_counts, enqueued, change, field):
    assert_names(post(client, "/studies", {**STUDY, **change}), "body", field)
    assert table_counts() == {t: 0 for t in table_counts()}
    assert enqueued == []


QUERY_CASES = {
    "frontier-weak_cost-Infinity": ("/frontier/cities", {**PRICES, "weak_cost": "inf"}, "weak_cost"),
    "frontier-gold_cost-5e-324": ("/frontier/cities", {**PRICES, "gold_cost": "5e-324"}, "gold_cost"),
    "frontier-weak_cost-1e308": ("/frontier/cities", {**PRICES, "weak_cost": "1e308"}, "weak_cost"),
    "frontier-budgets-1e308": ("/frontier/cities", {**PRICES, "budgets": ["16", "1e308"]}, "budgets"),
    "frontier-budgets-NaN": ("/frontier/cities", {**PRICES, "budgets": ["nan"]}, "budgets"),
    "frontier-budgets-too-many": ("/frontier/cities", {**PRICES, "budgets": [str(b) for b in range(1, 52)]}, "budgets"),
    "frontier-model-NUL": ("/frontier/cities", {**PRICES, "model": "\u0000"}, "model"),
    "marginal-budget-NaN": ("/frontier/cities/marginal", {**PRICES, "budget": "nan"}, "budget"),
    "marginal-budget-1e308": ("/frontier/cities/marginal", {**PRICES, "budget": "1e308"}, "budget"),
    "marginal-step-Infinity": ("/frontier/cities/marginal", {**PRICES, "budget": 20, "step": "inf"}, "step"),
    "marginal-n_weak-2**40": ("/frontier/cities/marginal",
                              {**PRICES, "budget": 20, "method": "seq_sft", "n_weak": 2**40, "n_gold": 0}, "n_weak"),
    "plan-max_budget-1e308": ("/plan/cities", {**PRICES, "target_accuracy": 0.8, "max_budget": "1e308"}, "max_budget"),
    "plan-weak_cost-5e-324": ("/plan/cities", {**PRICES, "target_accuracy": 0.8, "weak_cost": "5e-324"}, "weak_cost"),
    "plan-target-NaN": ("/plan/cities", {**PRICES, "target_accuracy": "nan"}, "target_accuracy"),
    "allocations-limit-negative": ("/allocations", {"limit": -1}, "limit"),
    "allocations-limit-huge": ("/allocations", {"limit": 10**6}, "limit"),
    "trials-task-NUL": ("/trials", {"task": "\u0000"}, "task"),
    "studies-limit-negative": ("/studies", {"limit": -1}, "limit"),
}


@pytest.mark.parametrize(("url", "params", "field"), QUERY_CASES.values(), ids=QUERY_CASES.keys())
def test_query_bounds(client, url, params, field):
    assert_names(client.get(url, params=params), "query", field)


def test_openapi_documents_the_bounds(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    allocation = schemas["AllocationRequest"]["properties"]
    assert allocation["params"]["properties"]["max_examples_per_stage"]["maximum"] == 1_000_000
    assert allocation["params"]["properties"]["patience"]["maximum"] == 1000
    assert allocation["params"]["additionalProperties"] is False
    assert allocation["weak_cost"]["minimum"] == 1e-6 and allocation["weak_cost"]["maximum"] == 1e6
    assert allocation["seeds"]["items"]["maximum"] == 2**31 - 1
    assert schemas["StudyRequest"]["properties"]["params"]["properties"]["min_delta"]["maximum"] == 1


# --- 2. ids and names that cannot exist: 404 or 422, never a 500 -----------------------------------


@pytest.mark.parametrize("trial_id", ["2147483648", "-1", "0", str(10**30)])
def test_trial_ids_outside_int32_are_404(client, trial_id):
    response = client.get(f"/trials/{trial_id}")
    assert response.status_code == 404, response.text
    assert trial_id in response.json()["detail"]


@pytest.mark.parametrize("url", ["/allocations/%00", "/sweeps/%00", "/studies/%00", "/frontier/%00?weak_cost=1&gold_cost=1",
                                 "/frontier/%00/marginal?weak_cost=1&gold_cost=1&budget=1",
                                 "/plan/%00?weak_cost=1&gold_cost=1&target_accuracy=0.5"])
def test_a_nul_in_a_path_is_422(client, url):
    assert_names(client.get(url), "path")


# --- 3. models by name only ------------------------------------------------------------------------


def test_odd_models_are_422_with_one_message_that_reveals_no_file(client, table_counts, optuna_studies):
    before = optuna_studies()
    messages = {}
    for model in ODD_MODELS:
        for url, body in (("/allocate", ALLOCATION), ("/studies", STUDY)):
            response = post(client, url, {**body, "model": model})
            assert_names(response, "body", "model")
            messages[model, url] = " ".join(d["msg"] for d in response.json()["detail"])
    # A NUL is refused by the service-wide check before anything reads the name (deps.reject_unstorable_text);
    # every other spec gets the very same message, so no answer depends on what lies on disk.
    named = {m for (model, _), m in messages.items() if "\u0000" not in model}
    assert len(named) == 1, named
    assert "unknown model:" in named.pop()
    assert not any(word in m for m in messages.values() for word in ("config.json", "directory", "exist", "/etc"))
    assert table_counts() == {t: 0 for t in table_counts()} and optuna_studies() == before


@pytest.fixture
def allowed(monkeypatch, tmp_path, make_api, enqueued):
    """An API whose operator allows `tiny` (a directory holding a copy of the packaged MiniLM's
    config.json: enough to accept a request), `broken` (its config.json a JSON list) and `nowhere`
    (a hub id, asked of the hub offline)."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    shutil.copy(f"{resolve_model('minilm-l6').path}/config.json", tiny / "config.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("[1, 2, 3]")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(
        "LABELMIX_ALLOWED_MODELS", json.dumps({"tiny": str(tiny), "broken": str(broken), "nowhere": "someorg/somemodel"})
    )
    return make_api()  # clears the cached settings: the engine reads the allow-list afresh


def test_an_allowed_local_directory_is_accepted_by_name(allowed, enqueued):
    response = post(allowed, "/allocate", {**ALLOCATION, "model": "tiny", "weak_labeler": "sft:tiny:100"})
    assert response.status_code == 202, response.text
    assert response.json()["request"]["model"] == "tiny"
    assert response.json()["request"]["weak_labeler"] == "sft:tiny:100"
    assert len(enqueued) == 4  # 2 points x 2 seeds, recorded, not trained


def test_an_allowed_directory_whose_config_is_not_an_object_is_422(allowed, table_counts, tmp_path, optuna_studies):
    before = optuna_studies()
    for url, body in (("/allocate", ALLOCATION), ("/studies", STUDY)):
        response = post(allowed, url, {**body, "model": "broken"})
        assert_names(response, "body", "model")
        assert "'broken'" in response.text and "not a JSON object" in response.text
        assert str(tmp_path) not in response.text
    assert table_counts("allocations", "trials") == {"allocations": 0, "trials": 0}
    assert optuna_studies() == before


def test_an_allowed_hub_id_is_asked_of_the_hub(allowed):
    response = post(allowed, "/allocate", {**ALLOCATION, "model": "nowhere"})
    assert_names(response, "body", "model")
    assert "cannot load model 'nowhere' from the Hugging Face hub" in response.text


# --- 4. weak_labeler checked when posted --------------------------------------------------------------

LABELER_CASES = {
    "bogus": ("bogus", "is not one of"),
    "bow-too-few": ("bow:2", "is not one of"),
    "sft-without-model": ("sft:", "is not one of"),
    "sft-unknown-model": ("sft:no-such-model", "unknown model 'no-such-model'"),
    "sft-path": ("sft:/etc:100", "unknown model:"),
    "too-long": ("bow:" + "1" * 10_000, "at most 200 characters"),
}


@pytest.mark.parametrize(("labeler", "words"), LABELER_CASES.values(), ids=LABELER_CASES.keys())
def test_a_bad_weak_labeler_is_422_when_posted(client, table_counts, enqueued, labeler, words):
    response = post(client, "/allocate", {**ALLOCATION, "weak_labeler": labeler})
    assert_names(response, "body", "weak_labeler")
    assert words in response.text
    assert table_counts() == {t: 0 for t in table_counts()} and enqueued == []


def test_the_task_labeler_needs_a_task_with_weak_labels(client, table_counts, enqueued):
    response = post(client, "/allocate", {**ALLOCATION, "weak_labeler": "task"})  # cities brought none
    assert_names(response, "body", "weak_labeler")
    assert "brought no weak labels" in response.text
    assert table_counts("allocations", "trials") == {"allocations": 0, "trials": 0} and enqueued == []
    response = post(client, "/studies", {**STUDY, "weak_labeler": "task"})  # a study asks the same
    assert_names(response, "body", "weak_labeler")
    assert "brought no weak labels" in response.text
    assert table_counts("grid_studies", "trials") == {"grid_studies": 0, "trials": 0} and enqueued == []


def test_good_weak_labelers_are_accepted(client, enqueued):
    for labeler in ("default", "bow", "bow:300", "sft:minilm-l3:8000"):
        response = post(client, "/allocate", {**ALLOCATION, "weak_labeler": labeler, "max_trials": 1, "seeds": [0]})
        assert response.status_code in (200, 202), response.text


# --- 5. no orphaned Optuna study ---------------------------------------------------------------------


def test_an_allocation_rolled_back_after_its_study_was_made_leaves_no_study(client, optuna_studies, table_counts):
    from app.allocations import lifecycle as allocation_service
    from app.allocations.schemas.allocations import AllocationRequest
    from app.db.session import session_scope
    from app.tasks.registry import get_task_row

    assert client.post("/tasks", data={"dataset": "cities"}).status_code == 201
    before = optuna_studies()
    with pytest.raises(RuntimeError, match="a later step failed"):
        with session_scope() as session:
            task = get_task_row(session, "cities")
            for budget in (50, 60):  # as a sweep does: several studies in one transaction
                allocation = allocation_service.create(
                    session, task, AllocationRequest(**{**ALLOCATION, "budget": budget}), False
                )
                assert allocation.study_name in optuna_studies()
            raise RuntimeError("a later step failed")
    assert optuna_studies() == before
    assert table_counts("allocations") == {"allocations": 0}

    # The control: committed, the study stays.
    with session_scope() as session:
        allocation = allocation_service.create(session, get_task_row(session, "cities"), AllocationRequest(**ALLOCATION), False)
    assert optuna_studies() == before | {allocation.study_name}
