"""GET / (the dashboard page) and its static files: nothing is fetched from outside at run time.

plotly.js comes from the `plotly` Python package (`plotly.offline.get_plotlyjs()`), read once and
kept in memory. Static URLs carry a version (plotly's, or a hash of the file), so they are cached
for a year without ever going stale.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from worker.engine.models import model_names
from worker.engine.tasks import BUILTIN_TASKS, HF_LOADERS

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
LONG_CACHE = {"Cache-Control": "public, max-age=31536000, immutable"}

router = APIRouter(include_in_schema=False)


@lru_cache
def plotly_js() -> tuple[bytes, str]:
    """plotly.js (minified) and its version, as shipped inside the plotly package."""
    import plotly
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode(), plotly.__version__


@lru_cache
def plotly_js_gzip() -> bytes:
    """The same, compressed once (about 4.8 MB down to 1.4 MB)."""
    return gzip.compress(plotly_js()[0], compresslevel=6, mtime=0)


def _version(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


@router.get("/", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    config = {
        "models": model_names(),  # the packaged ones, then the operator's allow-list
        "builtin_tasks": list(BUILTIN_TASKS),
        "datasets": [*BUILTIN_TASKS, *HF_LOADERS],
    }
    page = (
        (STATIC_DIR / "index.html")
        .read_text()
        .replace("{{config}}", json.dumps(config).replace("<", "\\u003c"))
        .replace("{{plotly_version}}", plotly_js()[1])
        .replace("{{js_version}}", _version("dashboard.js"))
        .replace("{{css_version}}", _version("dashboard.css"))
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/static/plotly.min.js")
def plotly_static(request: Request) -> Response:
    headers = {**LONG_CACHE, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(plotly_js_gzip(), media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"})
    return Response(plotly_js()[0], media_type="text/javascript", headers=headers)


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        raise HTTPException(404, f"no static file {name!r}")
    return Response((STATIC_DIR / name).read_bytes(), media_type=STATIC_FILES[name], headers=LONG_CACHE)
