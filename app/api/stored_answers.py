"""GET answers computed from stored trials, cached per process and validated by ETag.

A frontier depends only on the task's trials and the query, and a task's `results_version` moves
whenever its points' aggregates change (trials.aggregates.refresh: in the transaction that
finishes a trial, and before each read for trials stored any other way). So (path, query, task id,
task version, results version) names an answer exactly: it is the cache key, and its digest is the
ETag, the same in every API process. A dashboard that repeats a request with If-None-Match gets
304 without anything being computed or sent; a new finished trial changes the key, so nothing stale
is ever served and nothing needs clearing (old entries age out, least recently used first).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

from cachetools import LRUCache
from fastapi import Request, Response
from pydantic import BaseModel

from ..config import get_settings
from ..db.models import Task

NOT_MODIFIED = {304: {"description": "the answer has not changed since the ETag sent in If-None-Match"}}
_lock = threading.Lock()


@cache
def _answers() -> LRUCache:
    return LRUCache(maxsize=max(get_settings().read_cache_mb, 0) * 2**20 or 1, getsizeof=len)


def _key(request: Request, task: Task) -> tuple:
    # Sorted by name only: the order of a repeated parameter (budgets) is part of the answer.
    query = tuple(sorted(request.query_params.multi_items(), key=lambda kv: kv[0]))
    # created_at: a task dropped and made again (another database, a test) reuses ids and versions.
    return (request.url.path, query, task.id, task.created_at.isoformat(), task.version, task.results_version)


# The packages whose code computes or shapes an answer read from stored trials.
ANSWER_PACKAGES = ("tasks", "trials", "results", "allocations", "studies", "stats", "schemas")


APP_DIR = Path(__file__).parents[1]


def answer_code() -> list[Path]:
    return sorted(p for package in ANSWER_PACKAGES for p in (APP_DIR / package).rglob("*.py"))


@cache
def _code_digest() -> str:
    """The code that computes answers: another labelmix may answer the same request differently,
    so its ETags differ, while every process running this code agrees."""
    digest = hashlib.sha256()
    for path in answer_code():
        digest.update(str(path.relative_to(APP_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _etag(key: tuple) -> str:
    return '"' + hashlib.sha256(repr((_code_digest(), key)).encode()).hexdigest()[:32] + '"'


def _matches(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return sent.strip() == "*" or etag in {tag.strip().removeprefix("W/") for tag in sent.split(",")}


def stored_answer(request: Request, task: Task, compute: Callable[[], BaseModel]) -> Response:
    """The answer for this request: 304 when the client has it, from the cache, or computed once."""
    key = _key(request, task)
    etag = _etag(key)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}  # may be kept, but revalidated every time
    if _matches(request, etag):
        return Response(status_code=304, headers=headers)
    with _lock:
        body = _answers().get(key)
    if body is None:
        body = compute().model_dump_json().encode()
        if get_settings().read_cache_mb > 0:
            with _lock, contextlib.suppress(ValueError):  # a body bigger than the whole cache is not kept
                _answers()[key] = body
    return Response(body, media_type="application/json", headers=headers)
