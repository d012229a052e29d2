"""The dashboard's "Add a task" form with an annotation tool's export (issue 31): the "Format and
columns" options sent with the file, the answer's classes and records left out in its message, the
task's class balance under the task picker, and a refused option's message next to its input.
Driven in Chromium as test_dashboard.py drives the rest of the page (its fixtures and helpers)."""

from __future__ import annotations

import csv
import io
import json
import math
from decimal import ROUND_HALF_UP, Decimal

from test_client_cli_tasks import label_studio_export
from test_dashboard import DESKTOP, browser, open_page, server

__all__ = ["browser", "server"]  # fixtures, borrowed


def percent(v: float) -> str:
    """As the page writes a share (Math.round(100 * v)): halves up."""
    return f"{math.floor(100 * v + 0.5)}%"


def two_decimals(v: float) -> str:
    """As the page writes chance (toFixed(2) of the exact binary value)."""
    return str(Decimal(v).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def balance(task: dict) -> str:
    shown = ", ".join(f"{c} {percent(r)}" for c, r in zip(task["classes"], task["test_class_rates"]))
    return f"{len(task['classes'])} classes: {shown}; chance {two_decimals(max(task['test_class_rates']))}"


def upload(page, name: str, filename: str, content: bytes, **options: str) -> int:
    """Fill the form (options by input id: {"upload-label-field": "topic"}), send it, wait for the
    page to have handled the answer; the answer's status."""
    page.fill("#upload-name", name)
    page.set_input_files("#upload-file", files=[{"name": filename, "mimeType": "application/octet-stream",
                                                 "buffer": content}])
    if options and not page.locator("#upload-columns").evaluate("d => d.open"):
        page.click("#upload-columns summary")
    for input_id, value in options.items():
        if input_id == "upload-format":
            page.select_option(f"#{input_id}", value)
        else:
            page.fill(f"#{input_id}", value)
    with page.expect_response(lambda r: r.url.endswith("/tasks") and r.request.method == "POST") as answer:
        page.click("#upload-button")
    page.wait_for_function("!document.getElementById('upload-button').disabled")
    return answer.value.status


def test_a_label_studio_export_with_its_label_field_chosen(server, browser):
    base, client = server
    context, page = open_page(browser, base, DESKTOP)
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_buffer) if r.url.endswith("/tasks")
            and r.method == "POST" else None)
    export = json.dumps(label_studio_export()).encode()

    status = upload(page, "topics", "project-7-at-2024.json", export, **{"upload-label-field": "topic"})

    assert status == 201, page.inner_text("#upload-form")
    page.wait_for_function("document.getElementById('task').value === 'topics'")
    task = client.get("/tasks/topics").json()
    assert task["classes"] == ["politics", "science", "sports"]
    message = page.inner_text("#upload-form .form-ok")
    assert message == (f"Added topics: {task['n_pool']} pool, {task['n_test']} test examples. "
                       f"2 records left out: 1 annotators tied, 1 no annotation. {balance(task)}.")
    # Only the options given were sent: the blank ones are the service's defaults.
    body = sent[-1].decode()
    assert 'name="label_field"\r\n\r\ntopic\r\n' in body
    for blank in ("format", "text_field", "weak_field", "weak_score_field", "split"):
        assert f'name="{blank}"' not in body
    # The task picked: its classes and test-set balance where the task is described.
    page.wait_for_function("document.getElementById('task-info').dataset.classes === '3'")
    info = page.inner_text("#task-info")
    assert info.startswith(f"{task['n_pool']} pool · {task['n_test']} test · {balance(task)}"), info
    # Its chart, empty until it has trials, spans the task's chance (below 0.5 here) to perfect.
    chance = max(task["test_class_rates"])
    assert chance < 0.5
    page.wait_for_function(
        "(low) => { const c = document.getElementById('frontier-chart'); return c.dataset.points === '0'"
        " && c._fullLayout && c._fullLayout.yaxis.range[0] === low && c._fullLayout.yaxis.range[1] === 1; }",
        arg=math.floor(10 * chance) / 10)
    # A binary task reads as it did: no classes.
    page.select_option("#task", "cities")
    page.wait_for_function("document.getElementById('task-info').dataset.classes === ''")
    assert "classes" not in page.inner_text("#task-info")
    assert page.outside == [] and page.problems == []
    context.close()


def test_a_refused_option_shows_next_to_its_input(server, browser):
    base, client = server
    context, page = open_page(browser, base, DESKTOP)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["body", "label"])
    writer.writeheader()
    writer.writerows({"body": f"review {i}", "label": i % 2} for i in range(20))

    status = upload(page, "reviews", "reviews.csv", out.getvalue().encode(), **{"upload-text-field": "content"})

    assert status == 422
    assert page.locator("#upload-columns").evaluate("d => d.open")  # the message is where it can be read
    slot = page.locator('#upload-form [data-field="text_field"]')
    assert slot.get_attribute("class") == "field has-error"
    assert slot.locator(".field-error").inner_text() == (
        "the file has no column 'content'; its columns are 'body', 'label'")
    assert slot.locator(".field-error").is_visible()
    assert page.inner_text("#upload-form .form-error") == ""  # nothing left over for the form at large
    assert page.locator('#upload-form [data-field="label_field"] .field-error').inner_text() == ""

    # Another option (a split means nothing to a CSV): its own slot, the earlier message gone.
    status = upload(page, "reviews", "reviews.csv", out.getvalue().encode(),
                    **{"upload-text-field": "body", "upload-split": "train"})
    assert status == 422
    assert slot.locator(".field-error").inner_text() == ""
    assert "does not apply to a csv file" in page.inner_text('#upload-form [data-field="split"] .field-error')
    assert client.get("/tasks/reviews").status_code == 404
    assert page.outside == []
    assert [p for p in page.problems if "status of 422" not in p] == []
    context.close()
