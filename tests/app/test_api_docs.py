"""/docs (Swagger UI) and /redoc work with the network blocked: their scripts and styles come from
the app (fastapi-offline), not from a CDN."""

from __future__ import annotations

from test_dashboard import UI_TIMEOUT_MS, browser, server  # noqa: F401 (fixtures)


def _offline_page(browser, base: str):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:  # the network beyond the app is blocked
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return context, page, outside


def test_swagger_ui_and_redoc_list_the_operations_with_the_network_blocked(server, browser):  # noqa: F811
    base, client = server
    paths = client.get("/openapi.json").json()["paths"]
    context, page, outside = _offline_page(browser, base)

    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock")
    listed = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)")
    assert "/allocate" in listed and "/frontier/{task}" in listed
    assert len(set(listed)) == len(paths)

    page.goto(f"{base}/redoc")
    page.wait_for_selector("[data-section-id^='operation/']")
    assert page.locator("[data-section-id^='operation/']").count() >= len(paths)
    # All that was asked of the outside: ReDoc's own "powered by" logo in its menu, a picture.
    assert set(outside) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    context.close()
