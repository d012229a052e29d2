"""Callbacks reach public addresses only (issue 29): what is refused when the allocation is asked for
(a 422 naming callback_url), and what is refused when it connects (a name that resolves inside).

No allow-list here (test_webhooks.py allows loopback for its receivers)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from test_webhooks import REQUEST, callback_row, receiver, stored  # noqa: F401 (fixtures)

from app.allocations.callback_targets import CallbackTargetRefused, check_url, resolve_checked
from app.config import parse_networks

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:18901/leak",
    "http://[::1]:8000/",
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://0x7f.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://localhost:8000/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "http://100.64.0.1/",
    "http://0.0.0.0:5432/",
    "http://user:pw@hooks.example.org/hook",
])
def test_a_callback_url_inside_or_with_credentials_is_422_naming_the_field(api, url):
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": url})
    assert response.status_code == 422, response.text
    errors = [e for e in response.json()["detail"] if e["loc"] == ["body", "callback_url"]]
    assert errors and ("address" in errors[0]["msg"] or "password" in errors[0]["msg"]), response.json()
    assert api.get("/allocations").json()["items"] == []  # nothing stored


def test_public_addresses_pass_and_the_allow_list_admits_a_network():
    check_url("https://hooks.example.org/labelmix", [])
    check_url("http://93.184.215.14/hook", [])
    check_url("http://10.0.0.5/hook", parse_networks(["10.0.0.0/8"]))
    with pytest.raises(ValueError, match="loopback"):
        check_url("http://127.0.0.1/hook", parse_networks(["10.0.0.0/8"]))
    with pytest.raises(ValueError, match="not an IP network"):
        parse_networks(["ten-dot"])


def test_the_address_connected_to_is_checked_not_just_the_name():
    # `localhost` resolves inside whatever the request-time check made of it.
    with pytest.raises(CallbackTargetRefused, match="loopback"):
        resolve_checked("localhost", 80, [])
    assert resolve_checked("localhost", 80, parse_networks(["127.0.0.0/8", "::1/128"])) in ("127.0.0.1", "::1")


def loopback_host_name() -> str:
    """A name that is not obviously loopback but resolves to it (this machine's own), or skip."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except socket.gaierror:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        pytest.skip(f"this machine's name {name!r} resolves to {addresses}, not only loopback")
    return name


def test_a_name_that_resolves_inside_is_accepted_then_refused_when_it_connects(api, stored, receiver):
    """As DNS rebinding would have it: the name passes the request-time check (no lookup there), and
    the attempt resolves it, finds loopback and never connects."""
    name = loopback_host_name()
    stored(6)
    hook = receiver(204)
    url = hook.url.replace("127.0.0.1", name)
    response = api.post("/allocate", json={**REQUEST, "budget": 6, "callback_url": url})
    assert response.status_code == 200, response.text
    row = callback_row(response.json()["id"])
    assert row["state"] == "failed" and row["attempts"] == 1, row
    assert row["error"].startswith("CallbackTargetRefused") and "loopback" in row["error"]
    assert "127.0.0.1" not in row["error"]  # the key holder is not told the internal address
    assert hook.calls == []
