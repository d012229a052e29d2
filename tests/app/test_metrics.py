"""Prometheus metrics, scraped as Prometheus would: the API's GET /metrics, and a real trials
worker's own endpoint after it has run an allocation."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from test_celery_worker import BROKER, allocation_request, follow, wait_for
from test_celery_worker import broker, workers  # noqa: F401 (fixtures)


def scrape(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, its labels): value} of a /metrics page."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_api_metrics_count_requests_by_route_template_without_a_key(make_api, monkeypatch):
    monkeypatch.setenv("LABELMIX_REQUIRE_API_KEYS", "true")
    api = make_api()
    before = scrape(api.get("/metrics").text)  # counters are per process: compare, do not assume zero
    assert api.get("/tasks").status_code == 401  # keys are required ...
    response = api.get("/metrics")  # ... but not here: Prometheus scrapes without one
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    for allocation_id in ("a1b2c3", "d4e5f6"):
        assert api.get(f"/allocations/{allocation_id}").status_code == 401
    api.get("/no/such/path")
    after = scrape(api.get("/metrics").text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    template = {"method": "GET", "route": "/allocations/{allocation_id}"}
    assert delta("labelmix_http_requests_total", **template, status="401") == 2  # one series for both ids
    assert delta("labelmix_http_requests_total", method="GET", route="/tasks", status="401") == 1
    assert delta("labelmix_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("labelmix_http_request_duration_seconds_count", **template) == 2
    routes = {dict(labels).get("route") for _, labels in after}
    assert not any("a1b2c3" in r or "/no/such" in r for r in routes if r), routes
    # Not an operation: schemathesis and the schema conformance tests never see it.
    assert "/metrics" not in api.get("/openapi.json").json()["paths"]


def test_a_trials_worker_serves_trial_counts_and_queue_depth(make_api, workers):  # noqa: F811
    port = free_port()
    api = make_api(broker=BROKER)
    workers.start(LABELMIX_WORKER_METRICS_PORT=str(port))  # the trials pool, as the README starts it
    url = f"http://127.0.0.1:{port}/metrics"

    def page() -> str | None:
        try:
            return httpx.get(url, timeout=5).text
        except httpx.TransportError:  # not listening yet
            return None

    first = scrape(wait_for(page, 120, "the worker's metrics", workers.logs))
    assert value(first, "labelmix_trials_finished_total") == 0
    response = api.post("/allocate", json=allocation_request(max_trials=1))  # one tiny trial
    assert response.status_code == 202, response.text
    assert follow(api, response.json()["id"], 300, workers)["status"] == "done"

    samples = scrape(page())
    assert value(samples, "labelmix_trials_finished_total") >= 1
    assert value(samples, "labelmix_trials_started_total") >= value(samples, "labelmix_trials_finished_total")
    assert value(samples, "labelmix_trials_failed_total") == 0
    assert value(samples, "labelmix_trial_seconds_count", outcome="done") >= 1
    # Read from Redis at the scrape: both queues are there, and nothing is left waiting.
    assert value(samples, "labelmix_queue_messages", queue="trials") == 0
    assert ("labelmix_queue_messages", frozenset({("queue", "studies")})) in samples
