"""What schemathesis (test_schemathesis.py) found, one test each: every response an operation sends
is one its OpenAPI schema declares, and an error locates its field where the request had it.
"""

from __future__ import annotations

import pytest
from test_allocate_validation import VALID, client, enqueued  # noqa: F401 (fixtures)

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

DATA_OPERATIONS_WITH_A_404 = [
    ("get", "/tasks/{task}"), ("post", "/allocate"), ("get", "/allocations/{allocation_id}"),
    ("get", "/sweeps/{sweep_id}"), ("get", "/studies/{study_id}"), ("get", "/frontier/{task}"),
    ("get", "/frontier/{task}/marginal"), ("get", "/plan/{task}"), ("get", "/trials"),
    ("get", "/trials/{trial_id}"),
]


@pytest.fixture
def operations(client) -> dict[tuple[str, str], dict]:
    paths = client.get("/openapi.json").json()["paths"]
    return {(method, path): op for path, methods in paths.items() for method, op in methods.items()}


def declared(operation: dict) -> set[int]:
    return {int(status) for status in operation["responses"]}


def test_every_operation_declares_the_errors_it_can_send(operations):
    """Before, a 404 of an unknown task or id, a 403 of the Origin guard, a 429 of the quota and a
    503 of a database gone were sent but not declared (and GET /tasks declared no 422 at all)."""
    for (method, path), operation in operations.items():
        assert 422 in declared(operation), (method, path)  # a NUL anywhere in the request: any operation
        if path not in ("/healthz", "/readyz"):
            assert {401, 503} <= declared(operation), (method, path)
    for operation in DATA_OPERATIONS_WITH_A_404:
        assert 404 in declared(operations[operation]), operation
    for operation in (("post", "/tasks"), ("post", "/allocate"), ("post", "/studies")):
        assert {403, 413} <= declared(operations[operation]), operation
    assert 409 in declared(operations[("post", "/tasks")])
    assert 429 in declared(operations[("post", "/allocate")])
    assert 503 in declared(operations[("get", "/readyz")])
    retry_after = operations[("get", "/tasks")]["responses"]["503"]["headers"]["Retry-After"]
    assert retry_after["schema"] == {"type": "integer"}


def test_a_health_check_declares_the_422_it_can_send(client, operations):
    response = client.get("/healthz", params={"probe": "\x00"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "probe"]
    assert 422 in declared(operations[("get", "/healthz")])


def test_a_json_body_that_is_not_utf8_is_a_422_on_the_body(client, enqueued):
    """Was a 400 with a bare sentence, undeclared; malformed JSON in UTF-8 was already a 422."""
    body = b'{"task": "\xff\xfe"}'
    response = client.post("/allocate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"] and "cannot be read" in error["msg"]
    assert enqueued == []


def test_a_broken_multipart_form_is_a_422_on_the_body(client):
    """Was a 400 ("Invalid multipart data."), undeclared."""
    boundary = "a222103b9b30b1f9e8be6882ecedb1d2"
    response = client.post(
        "/tasks",
        content=f"--{boundary}\r\n[]--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"] and "Invalid multipart data" in error["msg"]


def test_a_refused_query_parameter_is_located_in_the_query(client):
    """Was ["body", "method"]: a GET has no body."""
    params = {"weak_cost": 0.1, "gold_cost": 1, "budget": 20, "method": "seq_sft"}
    response = client.get("/frontier/cities/marginal", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "method"]


def test_a_refused_path_parameter_is_located_in_the_path(client):
    """Was ["body", "task"]: the task of GET /plan/{task} is in its path."""
    assert client.post("/tasks", data={"dataset": "cities"}).status_code == 201  # registered, no trials
    response = client.get("/plan/cities", params={"target_accuracy": 0.8, "weak_cost": 0.1, "gold_cost": 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task"]


def test_a_refused_body_field_is_still_located_in_the_body(client, enqueued):
    body = {**VALID, "model": "smollm2-135m", "methods": ["icl"], "budget": 0.01}
    response = client.post("/allocate", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_the_schema_says_a_request_has_exactly_one_of_budget_and_budgets(operations):
    """The check was the validator's alone, so generated requests (and generated clients) sent both
    or neither; seeds and a sweep's budgets are distinct, and methods, when given, are not empty."""
    from app.allocations.schemas.allocations import AllocationRequest

    schema = AllocationRequest.model_json_schema()
    assert schema["oneOf"] == [
        {"required": ["budget"], "properties": {"budget": {"type": "number"}}},
        {"required": ["budgets"], "properties": {"budgets": {"type": "array"}}},
    ]
    properties = schema["properties"]
    assert properties["budgets"]["uniqueItems"] and properties["seeds"]["uniqueItems"]
    assert properties["methods"]["minItems"] == 1
