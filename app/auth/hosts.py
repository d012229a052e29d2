"""Without keys, answer only requests addressed to this machine by a loopback name.

A service that requires no keys listens on loopback only (`labelmix serve` refuses otherwise), and
the cross-site guard (origin.py) stops other sites' pages from changing anything. DNS rebinding gets
past both: a page at evil.example, whose name then resolves to 127.0.0.1, sends requests the browser
thinks are same-origin (`Host: evil.example:PORT`, `Origin: http://evil.example:PORT`), and reads the
answers: the webhook secret, the tasks. Such a request names the attacker's host, never a loopback
one, so it is refused here (400) before any route runs. With keys required the key is the guard and
any Host is served (the service is meant to be reached by its public name).
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost"})


def host_name(host_header: str) -> str:
    """"example.org:8000" -> "example.org"; "[::1]:8000" -> "::1"."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def is_loopback_name(name: str) -> bool:
    name = name.rstrip(".").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LoopbackHostGuard:
    def __init__(self, app: ASGIApp, trusted_hosts: list[str]):
        self.app = app
        self.trusted = {h.lower() for h in trusted_hosts}

    def _allowed(self, host_header: str | None) -> bool:
        if host_header is None:  # HTTP/1.0 without Host: not a browser that could be rebound
            return True
        name = host_name(host_header).lower()
        return is_loopback_name(name) or name in self.trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host")
            if not self._allowed(host):
                response = JSONResponse(
                    {"detail": f"Host {host!r} is not a loopback name: without API keys this service answers only "
                               "requests to localhost (LABELMIX_TRUSTED_HOSTS adds names)"},
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
