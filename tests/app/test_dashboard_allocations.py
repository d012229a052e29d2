"""The dashboard's allocations: the list and its filters, opening one (and a link to one) restoring the
form exactly, a refused start said at the button, live progress, the empty chart, and exports that
carry their context. Chromium via Playwright at 1280x800 and 390x844, on the real app
(tests/app/test_dashboard.py's fixtures and stored trials; allocations are written by hand, none trains).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from test_dashboard import (  # noqa: F401  (fixtures: server, browser, report)
    ARTIFACTS, DESKTOP, MINILM, PHONE, browser, correctness, insert_done_allocation, open_page, rendered_points, report,
    save, server, update_plan, wait_for_chart,
)

LIST_PAGE = 10  # rows a page of the list shows (dashboard.js LIST_PAGE)
REQUEST = {
    "task": "cities", "budget": 40, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft"], "model": MINILM,
    "max_trials": 5, "seeds": [3, 5], "weak_labeler": "default", "recipe": "paper", "params": {"max_steps_per_stage": 3},
}
VIEWPORTS = {"desktop": (DESKTOP, {}), "phone": (PHONE, {"is_mobile": True, "has_touch": True})}


def relabel(allocation_id: str, label: str | None, minutes_ago: float = 0, request: dict | None = None) -> None:
    """Give a stored allocation a label, a creation time and (optionally) another request."""
    from app.db.models import Allocation
    from app.db.session import session_scope

    with session_scope() as session:
        allocation = session.get(Allocation, allocation_id)
        allocation.label = label
        allocation.created_at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
        if request is not None:
            allocation.request = request


def insert_queued_allocations(n: int, minutes_ago: float) -> list[str]:
    """`n` queued allocations with no points yet, labelled "batch i", oldest last."""
    from sqlalchemy import select

    from app.db.models import Allocation, Task
    from app.db.session import session_scope

    ids = []
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == "cities")).one()
        for i in range(n):
            allocation_id = str(uuid.uuid4())
            session.add(Allocation(
                id=allocation_id, task_id=task.id, request={**REQUEST, "budget": 16 + i, "recipe": "fast", "params": {}},
                status="queued", study_name=f"allocation-{allocation_id}", points_total=4, label=f"batch {i}",
                created_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago + i),
            ))
            ids.append(allocation_id)
    return ids


def form_state(page) -> dict:
    return page.evaluate("""() => ({
        task: document.getElementById('task').value, model: document.getElementById('model').value,
        recipe: document.getElementById('recipe').value,
        gold: document.getElementById('gold-cost').value, weak: document.getElementById('weak-cost').value,
        budget: document.getElementById('budget').value,
        methods: [...document.querySelectorAll('input[name=methods]:checked')].map(i => i.value),
        max_trials: document.getElementById('max-trials').value, seeds: document.getElementById('seeds').value,
        weak_labeler: document.getElementById('weak-labeler').value, params: JSON.parse(document.getElementById('params').value),
        label: document.getElementById('allocation-label').value,
    })""")


EXPECTED_FORM = {
    "task": "cities", "model": MINILM, "recipe": "paper", "gold": "1", "weak": "0.1", "budget": "40", "methods": ["seq_sft"],
    "max_trials": "5", "seeds": "3, 5", "weak_labeler": "default", "params": {"max_steps_per_stage": 3}, "label": "Restore me",
}


def list_rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#allocations-table tbody tr",
        "rows => rows.map(r => ({id: r.dataset.allocationId, status: r.dataset.status,"
        " cells: [...r.cells].map(c => c.innerText.trim())}))",
    )


def wait_for_list(page, before: str | None = None) -> None:
    page.wait_for_function(
        "(before) => { const r = document.getElementById('allocations-table').dataset.ready; return r && r !== before; }",
        arg=before,
    )


def list_ready(page) -> str | None:
    return page.eval_on_selector("#allocations-table", "el => el.dataset.ready || null")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_allocations_panel_filters_pages_and_restores_the_form(server, browser, report, viewport):
    base, client = server
    size, options = VIEWPORTS[viewport]
    chosen, rec = insert_done_allocation(40)
    relabel(chosen, "Restore me", minutes_ago=1, request=REQUEST)
    other, _ = insert_done_allocation(20)
    relabel(other, "second look", minutes_ago=2)
    batch = insert_queued_allocations(LIST_PAGE, minutes_ago=3)  # 12 in all: two pages

    context, page = open_page(browser, base, size, **options)
    wait_for_list(page)
    rows = list_rows(page)
    assert [r["id"] for r in rows] == [chosen, other, *batch[: LIST_PAGE - 2]]  # newest first, one page
    first = rows[0]["cells"]
    assert first[:4] == ["Restore me", "cities", "$40", "done"]
    assert first[5] == f"{rec['expected_accuracy']:.3f}"  # the best accuracy, when done
    assert rows[2]["cells"][5] == "—" and rows[2]["cells"][3] == "queued"
    assert page.is_visible("#allocations-more")
    before = list_ready(page)
    page.click("#allocations-more")
    wait_for_list(page, before)
    assert [r["id"] for r in list_rows(page)] == [chosen, other, *batch]
    assert page.is_hidden("#allocations-more")  # the last page

    before = list_ready(page)
    page.select_option("#list-status", "done")
    wait_for_list(page, before)
    assert [r["id"] for r in list_rows(page)] == [chosen, other]
    before = list_ready(page)
    page.fill("#list-label", "RESTORE")
    wait_for_list(page, before)
    assert [r["id"] for r in list_rows(page)] == [chosen]
    before = list_ready(page)
    page.fill("#list-label", "nothing like it")
    wait_for_list(page, before)
    assert list_rows(page) == [] and page.is_visible("#allocations-empty")
    assert "No allocation matches" in page.inner_text("#allocations-empty")
    before = list_ready(page)
    page.fill("#list-label", "")
    page.select_option("#list-status", "")
    page.select_option("#list-task", "cities")
    wait_for_list(page, before)
    assert len(list_rows(page)) == LIST_PAGE
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]  # the list fits a phone
    page.locator(".card.allocations").scroll_into_view_if_needed()
    save(page, report, f"{viewport}-allocations-list.png")

    # Opening one shows its answer and progress, and puts back every setting it was asked with.
    page.click(f'#allocations-table [data-open="{chosen}"]')
    page.wait_for_function(f"document.getElementById('recommendation-card').dataset.allocationId === '{chosen}'")
    wait_for_chart(page)
    page.wait_for_function("document.getElementById('recipe').value === 'paper'")
    assert form_state(page) == EXPECTED_FORM
    assert page.get_attribute("#progress", "data-allocation-id") == chosen
    assert page.get_attribute("#progress", "data-status") == "done"
    assert f"allocation={chosen}" in page.url
    save(page, report, f"{viewport}-allocation-opened.png")

    # The link alone (nothing else in it) restores the same.
    context2, linked = open_page(browser, base, size, f"#allocation={chosen}", **options)
    linked.wait_for_function(f"document.getElementById('recommendation-card').dataset.allocationId === '{chosen}'")
    wait_for_chart(linked)
    linked.wait_for_function("document.getElementById('recipe').value === 'paper'")
    assert form_state(linked) == EXPECTED_FORM
    assert linked.outside == [] and linked.problems == []
    context2.close()

    assert page.outside == [] and page.problems == []
    context.close()


def test_a_refused_start_is_said_at_the_button_and_stays(server, browser, report):
    base, client = server
    context, page = open_page(browser, base, DESKTOP)
    update_plan(page, budget=0.1)
    page.check('input[name="methods"][value="seq_sft"]')
    with page.expect_response(lambda r: r.url.endswith("/allocate")) as answer:
        page.click("#allocate-button")
    assert answer.value.status == 422
    slot = page.locator("#allocate-form .form-error")
    slot.wait_for(state="visible")
    said = slot.inner_text()
    assert said.startswith("budget (in the plan above):") and "too small" in said, said
    # Beside the button, on screen.
    button, error = page.locator("#allocate-button").bounding_box(), slot.bounding_box()
    assert 0 <= error["y"] - (button["y"] + button["height"]) < 40
    assert 0 <= error["y"] and error["y"] + error["height"] <= DESKTOP["height"]
    save(page, report, "desktop-allocate-error.png")
    # The plan's refresh (its own errors cleared) leaves the message where it is.
    update_plan(page, budget=0.1)
    assert slot.inner_text() == said
    assert not client.get("/allocations").json()["items"]  # nothing was made
    assert page.outside == []
    assert [p for p in page.problems if "status of 422" not in p] == []
    context.close()


def insert_running_allocation() -> tuple[str, int, int]:
    """A running allocation for the plan at $40: one point measured (stored trials), one training
    (seed 0 running with progress, seed 1 queued), one queued. Returns its id, the running and a queued trial."""
    from sqlalchemy import select

    from app.db.models import Allocation, StudyPoint, Task, Trial
    from app.db.session import session_scope
    from worker.engine.spec import TrialSpec

    request = {**REQUEST, "recipe": "fast", "params": {}, "seeds": [0, 1], "max_trials": 4}
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == "cities")).one()
        measured = list(session.scalars(select(Trial).where(
            Trial.task_id == task.id, Trial.recipe == "fast", Trial.model == MINILM, Trial.method == "seq_sft",
            Trial.n_weak == 100, Trial.n_gold == 10)))
        assert len(measured) == 2

        def trial(method, n_weak, n_gold, seed, status, **extra):
            spec = TrialSpec(task="cities", model=MINILM, method=method, n_weak=n_weak, n_gold=n_gold, seed=seed, recipe="fast")
            return Trial(key=f"dashboard-pending-{method}-{n_weak}-{n_gold}-{seed}", task_id=task.id, model=MINILM, method=method,
                         n_weak=n_weak, n_gold=n_gold, seed=seed, weak_labeler="default",
                         spec={**spec.model_dump(mode="json"), "params": {}}, recipe="fast",
                         task_version=spec.task_version, status=status, **extra)

        now = datetime.now(timezone.utc)
        running = trial("seq_sft", 300, 0, 0, "running", attempts=1, started_at=now, heartbeat_at=now,
                        progress={"stage": "weak", "step": 40, "total_steps": 120, "val_auroc": 0.8123, "at": now.isoformat()})
        waiting = trial("seq_sft", 300, 0, 1, "queued")
        queued = trial("logconf_sft", 0, 30, 0, "queued")
        queued_too = trial("logconf_sft", 0, 30, 1, "queued")
        allocation_id = str(uuid.uuid4())
        allocation = Allocation(id=allocation_id, task_id=task.id, request=request, status="running",
                                study_name=f"allocation-{allocation_id}", points_total=4, label="live one")
        allocation.points = [
            StudyPoint(number=0, method="seq_sft", n_weak=100, n_gold=10, params={}, told=True, trials=measured),
            StudyPoint(number=1, method="seq_sft", n_weak=300, n_gold=0, params={}, trials=[running, waiting]),
            StudyPoint(number=2, method="logconf_sft", n_weak=0, n_gold=30, params={}, trials=[queued, queued_too]),
        ]
        session.add(allocation)
        session.flush()
        return allocation_id, running.id, queued.id


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_live_progress_shows_stage_step_eta_and_pending_points(server, browser, report, viewport):
    from app.db.models import Task, Trial
    from app.db.session import session_scope

    base, client = server
    size, options = VIEWPORTS[viewport]
    allocation_id, running_id, queued_id = insert_running_allocation()
    context, page = open_page(browser, base, size, f"#allocation={allocation_id}", **options)
    page.wait_for_selector("#progress:not([hidden])")
    page.wait_for_function("document.getElementById('frontier-chart').dataset.pending === '2'")
    wait_for_chart(page)
    running = page.locator('[data-progress="running"] li')
    assert running.count() == 1
    assert running.inner_text() == ("Training seq_sft 0 gold + 300 weak, seed 0: weak stage, step 40/120, "
                                    "validation AUROC 0.812")
    assert page.inner_text('[data-progress="trials"]').startswith("2/8 trials done")
    eta = page.inner_text('[data-progress="eta"]')
    assert eta.startswith("About ") and "6 trials to go at 1 s each (the mean of 2 finished)" in eta, eta
    # Pending points: hollow markers, apart from the measured ones.
    pending = page.evaluate("() => document.getElementById('frontier-chart').data.find(t => t.meta === 'pending')")
    assert pending["marker"]["symbol"] == "circle-open" and sorted(pending["x"]) == [30, 30]
    rendered_points(page)  # every marker drawn is accounted for
    page.locator("#progress").scroll_into_view_if_needed()
    save(page, report, f"{viewport}-allocation-live.png")

    # The worker's next beat moves the step: the page follows without a reload.
    with session_scope() as session:
        trial = session.get(Trial, running_id)
        trial.progress = {**trial.progress, "stage": "gold", "step": 80, "val_auroc": 0.85}
    page.wait_for_function(
        "document.querySelector('[data-progress=\"running\"] li').textContent.includes('gold stage, step 80/120')")
    # A trial that ends (here: fails) redraws the chart: one pending point fewer once both of its seeds end.
    with session_scope() as session:
        for trial in session.query(Trial).filter(Trial.method == "logconf_sft", Trial.n_gold == 30):
            trial.status = "failed"
    page.wait_for_function("document.getElementById('frontier-chart').dataset.pending === '1'")
    assert "2 failed" in page.inner_text('[data-progress="trials"]')
    # A trial stored: the model list counts it at once (20 done trials of minilm-l6 were stored before).
    assert page.locator(f'#model option[value="{MINILM}"]').inner_text() == f"{MINILM} (20 trials)"
    with session_scope() as session:
        trial = session.get(Trial, running_id)
        n_test = session.get(Task, trial.task_id).n_test
        trial.status, trial.test_accuracy, trial.selection_accuracy, trial.holdout_accuracy = "done", 0.8, 0.8, 0.795
        trial.test_auroc, trial.wall_s, trial.finished_at = 0.5, 1.0, datetime.now(timezone.utc)
        trial.result = {"test_accuracy": 0.8, "n_test": n_test,
                        "test_correct": correctness(0.8, 0.795, n_test, np.random.default_rng(1))}
    page.wait_for_function(f"document.querySelector('#model option[value=\"{MINILM}\"]').textContent === '{MINILM} (21 trials)'")
    assert page.inner_text('[data-progress="trials"]').startswith("3/8 trials done")
    assert page.outside == [] and page.problems == []
    context.close()


def test_empty_chart_exports_and_the_unspent_budget(server, browser, report, tmp_path):
    from PIL import Image

    base, client = server
    context, page = open_page(browser, base, DESKTOP)
    # Spending $50 of $64: the card says what is left.
    update_plan(page, **{"gold-cost": 1, "weak-cost": 0.1, "budget": 64})
    unspent = page.locator('#recommendation-card [data-rec="unspent"]')
    assert unspent.is_visible() and unspent.inner_text() == "$14 of the $64 budget left unspent"

    # CSV: every row says its task, recipe and test-set size.
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
    assert rows and all(r["task"] == "cities" and r["recipe"] == "fast" and int(r["n_test"]) > 0 for r in rows)
    # PNG: a title with the task, model, recipe, prices and budget, drawn above the plot.
    with page.expect_download() as download:
        page.click("#export-png")
    title = page.get_attribute("#export-png", "data-title")
    for part in ("cities", MINILM, "recipe fast", "weak $0.1", "gold $1", "budget $64"):
        assert part in title, title
    image = Image.open(download.value.path()).convert("L")
    assert image.size == (1200, 700)
    band = image.crop((0, 10, 600, 50))  # where the title is, left of the legend
    assert min(band.getdata()) < 100  # dark text there
    assert download.value.suggested_filename.endswith(".png")
    download.value.save_as(report(ARTIFACTS / "desktop-export.png"))  # to look at

    # A model with no trials: an empty chart with an accuracy axis, not plotly's -1 to 4.
    empty_model = page.eval_on_selector_all("#model option", "els => els.map(e => e.value).filter(v => v && !els.find(o => o.value === v).textContent.includes('trial'))")[0]
    before = page.eval_on_selector("#frontier-chart", "el => el.dataset.ready")
    page.select_option("#model", empty_model)
    page.wait_for_function("(b) => { const r = document.getElementById('frontier-chart').dataset.ready; return r && r !== b; }", arg=before)
    wait_for_chart(page)
    assert page.get_attribute("#frontier-chart", "data-points") == "0"
    low, high = page.evaluate("document.getElementById('frontier-chart')._fullLayout.yaxis.range")
    assert 0 <= low < high <= 1, (low, high)
    save(page, report, "desktop-empty-chart.png")
    assert page.outside == [] and page.problems == []
    context.close()


def test_on_a_phone_the_budget_label_fits_and_nothing_says_hover(server, browser, report):
    base, client = server
    context, page = open_page(browser, base, PHONE, is_mobile=True, has_touch=True)
    update_plan(page, **{"gold-cost": 1, "weak-cost": 0.1, "budget": 256})
    label = page.locator("#frontier-chart .annotation", has_text="budget").first
    box, chart = label.bounding_box(), page.locator("#frontier-chart").bounding_box()
    assert label.text_content() == "budget $256"
    assert chart["x"] <= box["x"] and box["x"] + box["width"] <= chart["x"] + chart["width"]
    assert "hover" not in page.inner_text("body").lower() and "Tap a point" in page.inner_text("#frontier-summary")
    page.locator("#frontier-chart").scroll_into_view_if_needed()
    save(page, report, "phone-budget-label.png")
    assert page.outside == [] and page.problems == []
    context.close()
