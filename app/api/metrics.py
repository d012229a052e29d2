"""Prometheus metrics of the API: requests counted and timed by method, route template and status.

`GET /metrics` serves them (and, in embedded mode, the trial counters of app/trial_metrics.py: the
trials run in this process). Labels are bounded: a route is its template (`/allocations/{allocation_id}`),
never the raw path, a path no route matched is `unmatched`, an unusual method is `other`.
"""

from __future__ import annotations

import os
import time

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("labelmix_http_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "labelmix_http_request_duration_seconds", "Time to answer an HTTP request, body sent",
    ["method", "route"],
    # From a cached frontier (milliseconds) to an upload of 50 MiB or a cold frontier (seconds).
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def _route(scope) -> str:
    route = scope.get("route")  # set by the router on a match (a wrong method included)
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


class MetricsMiddleware:
    """Plain ASGI, not BaseHTTPMiddleware: it neither buffers streamed bodies nor changes how errors
    propagate. Added outside the exception handlers, it sees the status they send; an error nothing
    handled is counted as the 500 Starlette's outermost layer makes of it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = _route(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - started)


router = APIRouter(include_in_schema=False)  # not an API operation: kept out of the OpenAPI schema


@router.get("/metrics")
def metrics() -> Response:
    # No API key, even when keys are required: Prometheus scrapes without one, and this page holds
    # counts and timings only (routes as templates, no ids, no task names, no data).
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # `labelmix serve --workers N`: every process's counts
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
