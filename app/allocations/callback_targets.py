"""Where a callback may go: public addresses only, and never for longer than one attempt's deadline.

A callback is a request the service makes on a key holder's behalf, from inside the deployment. Left
open, `callback_url: http://127.0.0.1:5432/` made it a port scanner and, with the receiver's answer
stored, a reader of internal pages (issue 29). So:

- Only globally routable unicast addresses are called (not loopback, private, link-local, shared,
  multicast, reserved or unspecified; an IPv4-mapped IPv6 address counts as its IPv4 one), unless
  the operator allows a network for internal receivers (LABELMIX_CALLBACK_ALLOW_NETWORKS).
- The check is made on the address actually connected to: each attempt resolves the name once,
  refuses it if any of its addresses is not allowed, and connects to the checked address (the Host
  header and the TLS server name stay the URL's). A name that resolves to a public address when the
  allocation is asked for and to an internal one when it ends (DNS rebinding) is refused then.
  When the allocation is asked for, only what needs no lookup is checked (a literal address, in any
  of the forms the resolver accepts, such as `2130706433`): a 422 at once rather than a failed
  callback later, without a DNS query inside the request.
- Every attempt has a deadline for the whole exchange (connect, TLS, request, answer), not just per
  read: a receiver that trickles one byte every few seconds used to hold a delivery for minutes.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpcore
import httpx

from app.config import Network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CallbackTargetRefused(Exception):
    """The callback's host is, or resolves to, an address callbacks may not reach: final, never retried."""


def why_not_public(address: IPAddress) -> str | None:
    """None for a globally routable unicast address, else what kind of address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # The narrower kinds first: 169.254.169.254 (a cloud's metadata service) is private too, but
    # "link-local" says more.
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10, the carriers' shared address space
        return "non-global"
    return None


def refusal(address: IPAddress, allowed: list[Network]) -> str | None:
    """Why a callback may not reach `address` (None: it may)."""
    if any(address in network for network in allowed):
        return None
    kind = why_not_public(address)
    return None if kind is None else f"a {kind} address"


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without a DNS lookup ("127.1", "2130706433", "[::1]"), or None for a name."""
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None
    return ipaddress.ip_address(infos[0][4][0].split("%")[0])


def check_url(url: str, allowed: list[Network]) -> None:
    """What can be checked when the allocation is asked for; raises ValueError saying why not."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password (they would be stored and shown with the allocation)")
    host = parts.hostname or ""
    if host.rstrip(".").lower() == "localhost" or host.lower().endswith(".localhost"):
        address = ipaddress.ip_address("127.0.0.1")
    else:
        address = literal_address(host)
    if address is not None and (why := refusal(address, allowed)):
        raise ValueError(
            f"names {why}: callbacks go to public addresses only (an operator can allow a network for "
            "internal receivers with LABELMIX_CALLBACK_ALLOW_NETWORKS)"
        )


def resolve_checked(host: str, port: int, allowed: list[Network]) -> str:
    """The address to connect to: `host` resolved once, refused if any of its addresses is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"could not resolve the callback's host: {exc}") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if why := refusal(address, allowed):
            # Not the address itself: the key holder who set the URL need not learn the internal network.
            raise CallbackTargetRefused(
                f"the callback's host resolves to {why}: callbacks go to public addresses only "
                "(LABELMIX_CALLBACK_ALLOW_NETWORKS)"
            )
    return str(addresses[0])


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by one deadline (time.monotonic())."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self._stream, self._deadline = stream, deadline

    def _timeout(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the attempt's deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._timeout(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._timeout(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, self._timeout(timeout)), self._deadline)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to allowed addresses, and bounds each connection by the attempt's deadline."""

    def __init__(self, allowed: list[Network], deadline: float):
        self.allowed, self.deadline = allowed, deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = resolve_checked(host, port, self.allowed)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the attempt's deadline passed")
        stream = super().connect_tcp(address, port, min(timeout or left, left), local_address, socket_options)
        return _DeadlineStream(stream, self.deadline)


def checked_client(allowed: list[Network], attempt_deadline_s: float, timeout: httpx.Timeout) -> httpx.Client:
    """A client for one attempt: no redirects, no proxies from the environment (a proxy would make
    the connection, past the check), allowed addresses only, everything done within the deadline."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its httpcore pool without a way to pass a network backend; this one is built with
    # the same defaults and ours.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=_CheckedBackend(allowed, time.monotonic() + attempt_deadline_s)
    )
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)
