"""Refuse state-changing requests that a browser sends from another site.

A web page can post a form to any address, labelmix on someone's laptop included, and keys do not
help where none are required. Browsers name the page's origin in `Origin` on such requests, so a
POST, PUT, PATCH or DELETE whose Origin is neither this service's own (the dashboard) nor in
LABELMIX_CORS_ALLOW_ORIGINS is answered 403 before any route runs. Requests without an Origin
(curl, scripts, the CLI) are not browsers' and pass.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CrossSiteGuard:
    def __init__(self, app: ASGIApp, allowed_origins: list[str]):
        self.app = app
        self.allowed = {o.rstrip("/") for o in allowed_origins}

    def _allowed(self, origin: str, headers: Headers, scheme: str) -> bool:
        if origin in self.allowed:
            return True
        host = headers.get("host")
        return host is not None and origin == f"{scheme}://{host}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._allowed(origin, headers, scope.get("scheme", "http")):
                response = JSONResponse(
                    {"detail": f"cross-site request refused: Origin {origin!r} is not this service's own "
                               "and not in LABELMIX_CORS_ALLOW_ORIGINS"},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
