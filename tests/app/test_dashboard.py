"""The planning dashboard (GET /), driven in Debian's Chromium, headless, by Playwright.

The app runs for real (uvicorn in a subprocess, embedded: no broker, trials train in-process) on
the test Postgres database, with the trials below written by hand (prices weak $0.1, gold $1), of the
`fast` recipe, each with the per-example correctness a real trial records on the task's test set
(the selection half at the trial's accuracy, the held-out half 0.005 lower):

  method            model          n_weak n_gold  test accuracy (seeds)   cost
  seq_sft           minilm-l6         100      0  0.66, 0.68               10
  seq_sft           minilm-l6           0     20  0.72, 0.74               20
  seq_sft           minilm-l6         100     10  0.74, 0.76               20   best within $20
  seq_sft           minilm-l6         200     10  0.78, 0.80               30   +$10 of weak: +4 pts
  seq_sft           minilm-l6         100     20  0.77, 0.79               30   +$10 of gold: +3 pts
  seq_sft           minilm-l6         300     20  0.83, 0.85               50
  logconf_sft       minilm-l6         300      0  0.75, 0.77               30
  logconf_sft       minilm-l6         400     10  0.80                     50
  uncertainty_sft   minilm-l6          50     30  0.79, 0.81               35
  icl               smollm2-135m        2      2  0.60                     2.2  (another model)

and, of the `paper` recipe (kept apart: the recipe selector shows one or the other):

  seq_sft           minilm-l6         100     10  0.70, 0.72               20
  seq_sft           minilm-l6           0     20  0.69                     20

A finished allocation (its recommendation from the real `recommend.recommendation` over the fast
points within its budget) is written by hand too where a test needs one without training.

Screenshots (1280x800 and 390x844) go to artifacts/dashboard/ (LABELMIX_ARTIFACTS_DIR overrides).
Chromium is /usr/bin/chromium (scripts/install.sh installs it; LABELMIX_CHROMIUM overrides).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import free_port

from app.stats.prices import Prices
from worker.engine.spec import TrialSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LABELMIX_ARTIFACTS_DIR", REPO_ROOT / "artifacts")) / "dashboard"
CHROMIUM = os.environ.get("LABELMIX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
# The machine may be busy: waits are generous.
UI_TIMEOUT_MS = 120_000
ALLOCATION_TIMEOUT_S = 900

MINILM, SMOLLM = "minilm-l6", "smollm2-135m"
ROWS = [  # method, model, n_weak, n_gold, test accuracy per seed
    ("seq_sft", MINILM, 100, 0, [0.66, 0.68]),
    ("seq_sft", MINILM, 0, 20, [0.72, 0.74]),
    ("seq_sft", MINILM, 100, 10, [0.74, 0.76]),
    ("seq_sft", MINILM, 200, 10, [0.78, 0.80]),
    ("seq_sft", MINILM, 100, 20, [0.77, 0.79]),
    ("seq_sft", MINILM, 300, 20, [0.83, 0.85]),
    ("logconf_sft", MINILM, 300, 0, [0.75, 0.77]),
    ("logconf_sft", MINILM, 400, 10, [0.80]),
    ("uncertainty_sft", MINILM, 50, 30, [0.79, 0.81]),
    ("icl", SMOLLM, 2, 2, [0.60]),
]
N_MINILM_POINTS = sum(model == MINILM for _, model, *_ in ROWS)
PAPER_ROWS = [
    ("seq_sft", MINILM, 100, 10, [0.70, 0.72]),
    ("seq_sft", MINILM, 0, 20, [0.69]),
]
PREDICTED_NAME = "predicted (learning surface)"
TINY = {"max_steps_per_stage": 3, "eval_every": 2, "n_test": 32, "max_length": 32}


# --- the app, for real -------------------------------------------------------------------------


def correctness(selection: float, holdout: float, n_test: int, rng: np.random.Generator) -> str:
    """Per-example correctness as a trial records it: the first half at `selection`, the rest at `holdout`."""
    from worker.engine.metrics import pack_correct

    halves = []
    for size, accuracy in ((n_test // 2, selection), (n_test - n_test // 2, holdout)):
        hits = np.zeros(size, dtype=bool)
        hits[: round(accuracy * size)] = True
        rng.shuffle(hits)
        halves.append(hits)
    return pack_correct(np.concatenate(halves))


def insert_trials(task_id: int, n_test: int) -> None:
    import app.trials  # noqa: F401 (its ORM hook stamps each row's recipe key and engine version, as the service's do)
    from app.db.models import Trial
    from app.db.session import session_scope

    keys = (f"dashboard-test-{i:04d}" for i in itertools.count())
    rng = np.random.default_rng(0)
    with session_scope() as session:
        for recipe, rows in (("fast", ROWS), ("paper", PAPER_ROWS)):
            for method, model, n_weak, n_gold, accuracies in rows:
                for seed, accuracy in enumerate(accuracies):
                    spec = TrialSpec(task="cities", model=model, method=method, n_weak=n_weak, n_gold=n_gold, seed=seed,
                                     recipe=recipe)
                    holdout = round(accuracy - 0.005, 4)
                    result = {"test_accuracy": accuracy, "n_test": n_test,
                              "test_correct": correctness(accuracy, holdout, n_test, rng)}
                    session.add(
                        Trial(
                            key=next(keys), task_id=task_id, model=model, method=method, n_weak=n_weak, n_gold=n_gold,
                            seed=seed, weak_labeler="default", spec={**spec.model_dump(mode="json"), "params": {}},
                            recipe=spec.recipe, task_version=spec.task_version, status="done", attempts=1,
                            test_accuracy=accuracy, selection_accuracy=accuracy, holdout_accuracy=holdout,
                            test_auroc=0.5, wall_s=1.0, result=result,
                        )
                    )


def insert_done_allocation(budget: float) -> tuple[str, dict]:
    """A finished allocation over the stored fast points within `budget`, its recommendation the service's own."""
    from sqlalchemy import select

    from app.tasks.registry import majority_rate
    from app.allocations.recommend import recommendation
    from app.db.models import Allocation, Task, Trial
    from app.db.session import session_scope
    from app.results.points import group_trials

    request = {
        "task": "cities", "budget": budget, "weak_cost": 0.1, "gold_cost": 1.0, "methods": ["seq_sft", "logconf_sft", "uncertainty_sft"],
        "model": MINILM, "max_trials": 8, "seeds": [0, 1], "weak_labeler": "default", "recipe": "fast", "params": {},
    }
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == "cities")).one()
        trials = session.scalars(select(Trial).where(Trial.task_id == task.id, Trial.model == MINILM, Trial.recipe == "fast"))
        points = [p for p in group_trials(list(trials)) if p.cost(Prices(0.1, 1.0)) <= budget + 1e-9]
        rec = recommendation(points, request, majority_rate(task), task.weak_label_accuracy)
        allocation_id = str(uuid.uuid4())
        session.add(Allocation(
            id=allocation_id, task_id=task.id, request=request, status="done", study_name=f"allocation-{allocation_id}",
            points_total=len(points), recommendation=rec,
        ))
    return allocation_id, json.loads(json.dumps(rec))


@pytest.fixture
def server(configure, clean_db):
    """The app under uvicorn on a free port, on the test database, with the trials above stored."""
    configure(clean_db)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (ARTIFACTS / "server.log").open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        headers = {}
        if os.environ.get("LABELMIX_REQUIRE_API_KEYS") == "true":
            from app.auth.keys import create_key
            from app.db.session import session_scope

            with session_scope() as session:
                headers = {"Authorization": f"Bearer {create_key(session, 'dashboard')[1]}"}
        client = httpx.Client(base_url=base, timeout=300, headers=headers)
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"the server exited: see {ARTIFACTS / 'server.log'}"
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        task = client.post("/tasks", data={"dataset": "cities"})  # registers the built-in task (a read would not)
        assert task.status_code == 201, task.text
        from sqlalchemy import select

        from app.db.models import Task
        from app.db.session import session_scope

        with session_scope() as session:
            row = session.scalars(select(Task).where(Task.name == "cities")).one()
            task_id, n_test = row.id, row.n_test
        insert_trials(task_id, n_test)
        yield base, client
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen) -> None:
    """Ask a server to stop; kill it if it has not within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the dashboard test drives Debian's Chromium at {CHROMIUM}: run scripts/install.sh (as root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def report(request, capsys):
    """report(path): name an artifact in the test's output (even when it passes) and its junit properties."""
    paths: list[Path] = []

    def _report(path: Path) -> Path:
        paths.append(path)
        request.node.user_properties.append(("artifact", str(path)))
        return path

    yield _report
    if paths:
        with capsys.disabled():
            print("".join(f"\nartifact: {path}" for path in paths))


def open_page(browser, base: str, viewport: dict, fragment: str = "", **context_args):
    """A page on the dashboard that may reach nothing but the app: outside requests are refused and listed."""
    context = browser.new_context(viewport=viewport, accept_downloads=True, **context_args)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    outside: list[str] = []
    problems: list[str] = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.goto(f"{base}/{fragment}")
    page.wait_for_function("document.body.dataset.ready === '1'")
    wait_for_chart(page)
    page.outside, page.problems = outside, problems
    return context, page


def wait_for_chart(page) -> None:
    page.wait_for_function("document.getElementById('frontier-chart').dataset.ready")
    page.wait_for_function(
        "document.getElementById('recommendation-card').dataset.ready"
        " === document.getElementById('frontier-chart').dataset.ready"
    )


def update_plan(page, **fields) -> None:
    """Set plan fields by id and press Update; waits for the redraw."""
    before = page.eval_on_selector("#frontier-chart", "el => el.dataset.ready")
    for field_id, value in fields.items():
        page.fill(f"#{field_id}", str(value))
    page.click("#plan-form button[type=submit]")
    page.wait_for_function(
        "(before) => { const r = document.getElementById('frontier-chart').dataset.ready;"
        " return r && r !== before && document.getElementById('recommendation-card').dataset.ready === r; }",
        arg=before,
    )


def rendered_points(page) -> int:
    """Markers drawn in the SVG for measured points; equals the chart's own count.

    The frontier lines draw none; the predicted line's markers are counted apart (dataset.predicted), and so
    are an unfinished allocation's pending points (dataset.pending).
    """
    traces = page.evaluate(
        "() => { const gd = document.getElementById('frontier-chart');"
        " return gd._fullData.map(t => ({meta: t.meta || null,"
        " n: gd.querySelectorAll(`.scatterlayer .trace${t.uid} .points path.point`).length})); }"
    )
    assert sum(t["n"] for t in traces) == page.locator("#frontier-chart .scatterlayer .trace .points path.point").count()
    measured = sum(t["n"] for t in traces if t["meta"] == "points")
    predicted = sum(t["n"] for t in traces if t["meta"] == "predicted")
    pending = sum(t["n"] for t in traces if t["meta"] == "pending")  # an allocation's points not measured yet
    assert measured + predicted + pending == sum(t["n"] for t in traces)
    assert pending == int(page.eval_on_selector("#frontier-chart", "el => el.dataset.pending || '0'"))
    assert measured == int(page.eval_on_selector("#frontier-chart", "el => el.dataset.points"))
    assert predicted == int(page.eval_on_selector("#frontier-chart", "el => el.dataset.predicted || '0'"))
    return measured


def rec_values(page) -> dict:
    return page.eval_on_selector_all(
        "#recommendation-card [data-rec]",
        "els => Object.fromEntries(els.map(e => [e.dataset.rec, [e.dataset.value ?? null, e.textContent]]))",
    )


def money(v: float) -> str:
    return f"${v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1 else f"${v:,.2f}".rstrip("0").rstrip(".")


def three_decimals(v: float) -> str:
    """As the page writes it (JavaScript's toFixed(3)): halves round up, where Python's format
    rounds an exact binary half to even (18/32 = 0.5625 reads 0.563 on the page, 0.562 in Python)."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(v).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))  # the exact binary value, as JS


def check_recommendation(page, expected: dict) -> None:
    """The page shows `expected` (a recommendation as the API gives it), raw values and their text."""
    shown = rec_values(page)
    assert shown["method"] == [expected["method"], expected["method"]]
    assert shown["regime"] == [expected["regime"], expected["regime"]]
    assert int(shown["n_gold"][0]) == expected["n_gold"] and shown["n_gold"][1] == f"{expected['n_gold']:,}"
    assert int(shown["n_weak"][0]) == expected["n_weak"] and shown["n_weak"][1] == f"{expected['n_weak']:,}"
    for field in ("spend_gold", "spend_weak"):
        assert float(shown[field][0]) == pytest.approx(expected[field]) and shown[field][1] == money(expected[field])
    assert float(shown["expected_accuracy"][0]) == pytest.approx(expected["expected_accuracy"])
    assert shown["expected_accuracy"][1] == three_decimals(expected["expected_accuracy"])
    # The interval, with its level, over the whole test set (stored trials: the point's own).
    node = page.locator('#recommendation-card [data-rec="interval"]')
    interval = expected["expected_accuracy_interval"]
    assert node.get_attribute("data-kind") == "expected"
    assert float(node.get_attribute("data-low")) == pytest.approx(interval["low"])
    assert float(node.get_attribute("data-high")) == pytest.approx(interval["high"])
    text = (f"({interval['level']:.0%} interval {interval['low']:.3f}–{interval['high']:.3f})"
            if interval["high"] > interval["low"] else "(no spread measured)")  # never a zero-width range
    assert shown["interval"][1] == text
    assert shown["seeds"][1] == "whole test set, " + f"{interval['n_seeds']} seed" + (
        "s" if interval["n_seeds"] != 1 else "")
    # Each warning, with its message; the unspent budget; no seed spread shown as "±".
    warnings = page.locator("#rec-warnings li.warning")
    assert warnings.evaluate_all("els => els.map(e => e.dataset.code)") == [w["code"] for w in expected["warnings"]]
    for item, warning in zip(warnings.all(), expected["warnings"]):
        assert warning["message"] in item.inner_text()
    assert page.locator("#rec-warnings").is_visible() == bool(expected["warnings"])
    unspent = page.locator('#recommendation-card [data-rec="unspent"]')
    assert unspent.is_visible() == (expected["unspent"] > 0)
    if expected["unspent"] > 0:
        assert unspent.inner_text().startswith(f"{money(expected['unspent'])} of the ")
    tie = page.locator('#recommendation-card [data-rec="tie"]')
    assert tie.is_visible() == bool(expected.get("tie"))
    if expected.get("tie"):
        best = expected.get("best") or expected.get("best_on_selection")
        cheapest = all(expected["cost"] <= c + 1e-9 for c in [t["cost"] for t in expected["ties"]] + [best["cost"]])
        assert tie.inner_text() == f"tie: {len(expected['ties']) + 1} allocations cannot be told apart; " + (
            "the cheapest is recommended" if cheapest else "more seeds would separate them")
    assert "±" not in page.inner_text("#recommendation")


def save(page, report, name: str, full_page: bool = False) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return report(path)


# --- the page and its files, without a browser -------------------------------------------------


def test_page_and_static_files_come_from_the_app(api, monkeypatch):
    from worker.engine.settings import engine_settings

    monkeypatch.setenv("LABELMIX_ALLOWED_MODELS", '{"team-bert": "some-org/some-bert"}')
    engine_settings.cache_clear()
    page = api.get("/")
    engine_settings.cache_clear()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # nothing from outside
    config = json.loads(page.text.split('<script id="config" type="application/json">')[1].split("</script>")[0])
    assert "minilm-l6" in config["models"] and "cities" in config["builtin_tasks"]
    assert config["models"][-1] == "team-bert"  # the operator's allow-list is offered too

    from plotly.offline import get_plotlyjs

    js = api.get("/static/plotly.min.js", headers={"accept-encoding": "identity"})
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.text == get_plotlyjs()
    assert "max-age=31536000" in js.headers["cache-control"]
    zipped = api.get("/static/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == js.text  # httpx decodes it
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        response = api.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert f"/static/{name}?v=" in page.text  # versioned URL: the long cache never goes stale
    assert api.get("/static/../main.py").status_code == 404
    assert api.get("/static/nothing.js").status_code == 404


# --- in the browser ----------------------------------------------------------------------------


def test_frontier_recommendation_exports_and_uploads_at_1280(server, browser, report):
    base, client = server
    context, page = open_page(browser, base, DESKTOP)
    assert page.input_value("#task") == "cities"
    assert page.input_value("#model") == MINILM  # the model with stored trials
    # How the weak labels are made is said before any spending.
    page.wait_for_function("document.querySelector('#task-info').textContent.includes('pool')")
    assert "weak labels (sft:minilm-l3:8000)" in page.text_content("#task-info")
    with page.expect_response(lambda r: "/frontier/cities?" in r.url and "predict=true" in r.url) as asked:
        update_plan(page, **{"gold-cost": 1, "weak-cost": 0.1, "budget": 20})
    page_frontier = asked.value.json()

    # The frontier: one marker per stored point of the model, one series per method, colored by weak share.
    prices = {"weak_cost": 0.1, "gold_cost": 1, "model": MINILM}
    api_frontier = client.get("/frontier/cities", params={**prices, "budgets": 20}).json()
    assert api_frontier["recipe"] == page_frontier["recipe"] == "fast"  # the recipe with the most trials
    assert len(api_frontier["points"]) == N_MINILM_POINTS
    assert rendered_points(page) == N_MINILM_POINTS
    traces = page.evaluate(
        "() => document.getElementById('frontier-chart').data.map(t => ({name: t.name, meta: t.meta || null, n: t.x.length,"
        " colors: t.marker ? t.marker.color : null, mode: t.mode}))"
    )
    series = {t["name"]: t for t in traces if t["meta"] == "points"}
    assert set(series) == {"seq_sft", "logconf_sft", "uncertainty_sft"}
    assert sum(t["n"] for t in series.values()) == N_MINILM_POINTS
    shares = sorted(c for t in series.values() for c in t["colors"])
    assert shares == sorted(p["weak_share_of_spend"] for p in api_frontier["points"])
    pareto = next(t for t in traces if t["name"] == "Pareto frontier")
    assert pareto["n"] == len(api_frontier["overall"]) and pareto["mode"] == "lines"
    # Error bars: each point's interval, asymmetric (high - accuracy above, accuracy - low below).
    bars = page.evaluate(
        "() => document.getElementById('frontier-chart').data.filter(t => t.meta === 'points')"
        ".flatMap(t => t.x.map((x, i) => [x, t.y[i], t.error_y.symmetric, t.error_y.array[i], t.error_y.arrayminus[i]]))"
    )
    by_cost_acc = {(p["cost"], p["accuracy"]): p["interval"] for p in api_frontier["points"]}
    assert len(bars) == N_MINILM_POINTS
    for x, y, symmetric, up, down in bars:
        interval = by_cost_acc[(x, y)]
        assert symmetric is False and interval["level"] == 0.9 and interval["high"] > interval["low"]
        assert up == pytest.approx(interval["high"] - y) and down == pytest.approx(y - interval["low"])

    # The learning surface's prediction (the page asks with predict=true): a dashed line named as a
    # prediction, with its band, hollow markers where it leaves the measured points.
    assert page_frontier["predicted"] and any(s["model"] for s in page_frontier["surfaces"])
    predicted = page.evaluate(
        "(name) => { const t = document.getElementById('frontier-chart').data.find(t => t.name === name);"
        " return t && {x: t.x, y: t.y, dash: t.line.dash, symbols: t.marker.symbol, support: t.customdata}; }",
        PREDICTED_NAME,
    )
    assert predicted and predicted["dash"] == "dash" and len(predicted["x"]) >= 2
    drawn = [{(p["cost"], p["accuracy"]): p for p in page_frontier["predicted"]}[xy] for xy in zip(predicted["x"], predicted["y"])]
    for point, symbol, support in zip(drawn, predicted["symbols"], predicted["support"]):
        assert (symbol, support) == (("circle", "in support") if point["in_support"] else ("circle-open", "outside support"))
    band = page.evaluate(
        "() => document.getElementById('frontier-chart').data.filter(t => t.meta === 'predicted-band')"
        ".map(t => ({y: t.y, fill: t.fill || null}))"
    )
    assert [b["fill"] for b in band] == [None, "tonexty"]
    assert band[0]["y"] == pytest.approx([p["low"] for p in drawn])
    assert band[1]["y"] == pytest.approx([p["high"] for p in drawn])
    assert PREDICTED_NAME in page.locator("#frontier-chart .legendtext").all_text_contents()
    assert "prediction, not a measurement" in page.inner_text("#frontier-summary")
    annotations = page.locator("#frontier-chart .annotation-text").all_text_contents()
    assert "budget $20" in annotations and "recommended" in annotations  # the budget is marked
    assert page.inner_text("#table-count") == str(N_MINILM_POINTS)

    # Hovering a point shows its trials.
    page.locator("#frontier-chart .scatterlayer .trace .points path.point").first.hover(force=True)
    hover = page.locator("#frontier-chart .hoverlayer .hovertext")
    hover.wait_for()
    text = hover.text_content()
    for word in ("n_weak", "n_gold", "seeds", "accuracy", "90% interval", "test examples", "trials #"):
        assert word in text, text
    assert "±" not in text

    # The recommendation from stored trials is the frontier's best within the budget ...
    best = api_frontier["best_at_budget"][0]["best"]
    assert (best["method"], best["n_weak"], best["n_gold"]) == ("seq_sft", 100, 10)
    assert page.get_attribute("#recommendation-card", "data-source") == "stored"
    note = best["interval"]["note"]
    expected = {**best, "expected_accuracy": best["accuracy"], "expected_accuracy_interval": best["interval"],
                "unspent": 20 - best["cost"],
                "warnings": [{"code": "few_seeds", "message": note}] if note else []}
    check_recommendation(page, expected)
    # ... and what the next dollars would buy is the marginal endpoint's answer.
    marginal = client.get("/frontier/cities/marginal", params={
        **prices, "budget": 20, "method": "seq_sft", "n_weak": 100, "n_gold": 10,
    }).json()
    assert marginal["more_weak"]["gain_per_dollar"] == pytest.approx(0.004)
    assert marginal["more_gold"]["gain_per_dollar"] == pytest.approx(0.003)
    weak_item, gold_item = page.locator('[data-direction="weak"]'), page.locator('[data-direction="gold"]')
    assert float(weak_item.get_attribute("data-gain-per-dollar")) == pytest.approx(0.004)
    assert float(gold_item.get_attribute("data-gain-per-dollar")) == pytest.approx(0.003)
    assert "100 more weak labels (+$10)" in weak_item.inner_text() and "+4.0 pts" in weak_item.inner_text()
    assert "10 more gold labels (+$10)" in gold_item.inner_text() and "+3.0 pts" in gold_item.inner_text()
    assert "more on weak labels" in page.inner_text("#next-verdict")
    save(page, report, "desktop-1280x800.png")

    # Exports: the table as CSV (every point, the API's figures) and the chart as PNG.
    page.click("summary:has-text('Table')")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == N_MINILM_POINTS
    by_key = {(p["method"], p["n_weak"], p["n_gold"]): p for p in api_frontier["points"]}
    for row in rows:
        point = by_key[(row["method"], int(row["n_weak"]), int(row["n_gold"]))]
        assert float(row["accuracy"]) == pytest.approx(point["accuracy"])
        assert float(row["cost"]) == pytest.approx(point["cost"])
        assert (row["task"], row["recipe"], int(row["n_test"])) == ("cities", "fast", point["n_test"])
        assert float(row["interval_low"]) == pytest.approx(point["interval"]["low"])
        assert float(row["interval_high"]) == pytest.approx(point["interval"]["high"])
        assert float(row["interval_level"]) == 0.9
    # The table shows each point's interval, not a seed spread.
    table = page.inner_text("#frontier-table")
    assert "90% interval" in table and "±" not in table
    first = api_frontier["points"][0]["interval"]
    assert f"{first['low']:.3f}–{first['high']:.3f}" in table
    on_frontier = {(r["method"], int(r["n_weak"]), int(r["n_gold"])) for r in rows if r["on_frontier"] == "true"}
    assert on_frontier == {(p["method"], p["n_weak"], p["n_gold"]) for p in api_frontier["overall"]}
    with page.expect_download() as download:
        page.click("#export-png")
    png = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename.endswith(".png") and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    png_copy = ARTIFACTS / "frontier-export.png"
    png_copy.write_bytes(png)
    report(png_copy)

    # Compare weak prices side by side: one frontier per price, and the best allocation at each.
    page.check("#compare")
    page.wait_for_function("document.querySelectorAll('#compare-table thead th[data-weak-cost]').length === 3")
    wait_for_chart(page)
    names = page.evaluate("() => document.getElementById('frontier-chart').data.map(t => t.name)")
    assert names == ["weak $0.5", "weak $0.1", "weak $0.01"]
    for i, cost in enumerate((0.5, 0.1, 0.01)):
        expected = client.get("/frontier/cities", params={**prices, "weak_cost": cost, "budgets": 20}).json()
        n = page.evaluate(f"() => document.getElementById('frontier-chart').data[{i}].x.length")
        assert n == len(expected["overall"])
        column = page.locator(f"#compare-table tbody tr td:nth-child({i + 2})").all_inner_texts()
        best = expected["best_at_budget"][0]["best"]
        assert column[0].startswith(f"{best['n_gold']:,} ") and column[2] == best["method"]
    assert rendered_points(page) == sum(
        len(client.get("/frontier/cities", params={"weak_cost": c, "gold_cost": 1, "model": MINILM}).json()["overall"])
        for c in (0.5, 0.1, 0.01)
    )
    save(page, report, "desktop-compare-1280x800.png")
    page.uncheck("#compare")
    wait_for_chart(page)

    # Uploads: the service's messages next to the field they are about.
    good = [{"text": f"the film was {('dreadful', 'wonderful')[i % 2]}, review {i}", "label": i % 2} for i in range(30)]
    # Three problems at once, every one listed: two labels and a text repeated under another label.
    bad = [*good[:4], {"text": "a third kind of review", "label": 2}, *good[4:8],
           {"text": "a fourth kind", "label": "yes"}, {**good[0], "label": 1}, *good[8:]]

    def upload(name: str, records: list[dict]) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(records)
        page.fill("#upload-name", name)
        csv_file = {"name": "reviews.csv", "mimeType": "text/csv", "buffer": out.getvalue().encode()}
        page.set_input_files("#upload-file", files=[csv_file])
        # Wait for the service's answer itself, then for the page to have handled it.
        with page.expect_response(lambda r: r.url.endswith("/tasks") and r.request.method == "POST") as answer:
            page.click("#upload-button")
        print(f"POST /tasks name={name!r}: {answer.value.status}")  # shown when the test fails
        page.wait_for_function("!document.getElementById('upload-button').disabled")

    upload("reviews", bad)
    label_error = page.locator('#upload-form [data-field="label"] .field-error')
    assert label_error.inner_text().splitlines() == ["row 10: 'yes' is a name, where the file's other labels are numbers",
                                                     "needs at least 10 rows with label 2, has 1 (row 5)"]
    assert page.locator('#upload-form [data-field="text"] .field-error').inner_text() == (
        "row 11: repeats the text of row 1 with another label")
    assert page.locator('#upload-form [data-field="label"]').get_attribute("class") == "has-error"
    assert page.locator('#upload-form [data-field="name"] .field-error').inner_text() == ""
    page.locator("#upload-form").scroll_into_view_if_needed()
    save(page, report, "desktop-upload-error.png")
    upload("Bad Name", good)
    assert "lowercase" in page.locator('#upload-form [data-field="name"] .field-error').inner_text()
    assert label_error.inner_text() == ""  # the earlier message is gone
    upload("cities", good)  # 409: reserved for the built-in task
    assert "reserved" in page.locator('#upload-form [data-field="name"] .field-error').inner_text()
    upload("reviews", [*good, good[3]])
    page.wait_for_function("document.getElementById('task').value === 'reviews'")
    assert "Added reviews" in page.inner_text("#upload-form .form-ok")
    assert "30 of 31 rows kept: 1 repeated an earlier row exactly." in page.inner_text("#upload-form .form-ok")
    assert client.get("/tasks/reviews").json()["n_pool"] + client.get("/tasks/reviews").json()["n_test"] == 30
    wait_for_chart(page)
    assert rendered_points(page) == 0 and page.get_attribute("#recommendation-card", "data-source") == "none"

    assert page.outside == []
    # Chromium logs each refused upload (422, 409) as a console error; nothing else may fail.
    assert [p for p in page.problems if not ("status of 422" in p or "status of 409" in p)] == []
    context.close()


def test_allocation_card_recipes_and_target_plan_at_1280(server, browser, report):
    base, client = server
    # A finished allocation at $40: the fast points within it, chosen by the service's own rule.
    allocation_id, rec = insert_done_allocation(40)
    # What the card must show is there to show (the seeded points were picked for it).
    assert rec["tie"] and rec["ties"] and rec["unspent"] > 0 and rec["runner_up"]
    assert "tie" in [w["code"] for w in rec["warnings"]]
    interval = rec["expected_accuracy_interval"]
    assert interval["low"] < rec["expected_accuracy"] < interval["high"] and interval["level"] == 0.9

    fragment = f"#task=cities&model={MINILM}&gold=1&weak=0.1&budget=40&allocation={allocation_id}"
    context, page = open_page(browser, base, DESKTOP, fragment)
    page.wait_for_function(f"document.getElementById('recommendation-card').dataset.allocationId === '{allocation_id}'")
    wait_for_chart(page)
    assert page.get_attribute("#recommendation-card", "data-source") == "allocation"

    # The recommendation card: the held-out interval with its level, the tie, every warning, the
    # unspent budget, the runner-up's difference with its interval.
    check_recommendation(page, rec)
    shown = page.inner_text('#recommendation-card [data-rec="expected_accuracy"]') + " " + page.inner_text(
        '#recommendation-card [data-rec="interval"]')
    assert shown == f"{rec['expected_accuracy']:.3f} (90% interval {interval['low']:.3f}–{interval['high']:.3f})"
    warning_items = page.locator("#rec-warnings li.warning")
    assert warning_items.count() == len(rec["warnings"]) >= 1
    color = warning_items.first.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert color == "rgb(201, 138, 0)"  # styled as a warning
    runner = page.inner_text('#recommendation-card [data-rec="runner_up"]')
    d = rec["runner_up"]["best_minus_it"]
    assert rec["runner_up"]["method"] in runner and f"(90% interval " in runner
    assert ("a tie" in runner) == d["tie"]
    save(page, report, "desktop-allocation-card.png")

    # The recipe selector lists the task's recipes, most trials first, the server's default chosen.
    frontier = client.get("/frontier/cities", params={"weak_cost": 0.1, "gold_cost": 1, "model": MINILM}).json()
    assert [r["recipe"] for r in frontier["recipes"]] == ["fast", "paper"]
    options = page.locator("#recipe option")
    assert options.evaluate_all("els => els.map(e => e.value)") == ["fast", "paper"]
    assert options.all_inner_texts() == [f"{r['recipe']} ({r['n_trials']} trials)" for r in frontier["recipes"]]
    assert page.input_value("#recipe") == "fast"
    assert page.locator("label[for=recipe]").inner_text() == "Recipe"
    assert rendered_points(page) == N_MINILM_POINTS
    assert page.evaluate("(name) => document.getElementById('frontier-chart').data.some(t => t.name === name)", PREDICTED_NAME)

    # Choosing another recipe reloads the frontier with it: its own points only, no surface (too few).
    before = page.eval_on_selector("#frontier-chart", "el => el.dataset.ready")
    with page.expect_response(lambda r: "/frontier/cities?" in r.url and "recipe=paper" in r.url):
        page.select_option("#recipe", "paper")
    page.wait_for_function(
        "(before) => { const r = document.getElementById('frontier-chart').dataset.ready;"
        " return r && r !== before && document.getElementById('recommendation-card').dataset.ready === r; }",
        arg=before,
    )
    paper = client.get("/frontier/cities", params={"weak_cost": 0.1, "gold_cost": 1, "model": MINILM, "recipe": "paper"}).json()
    assert paper["recipe"] == "paper" and len(paper["points"]) == len(PAPER_ROWS)
    assert rendered_points(page) == len(PAPER_ROWS)
    assert page.input_value("#recipe") == "paper" and "recipe=paper" in page.url
    assert not page.evaluate("(name) => document.getElementById('frontier-chart').data.some(t => t.name === name)", PREDICTED_NAME)
    assert "recipe paper" in page.inner_text("#frontier-summary")
    page.select_option("#recipe", "fast")
    page.wait_for_function("document.getElementById('frontier-chart').dataset.points === String(%d)" % N_MINILM_POINTS)
    wait_for_chart(page)

    # Plan for a target accuracy: GET /plan at the plan's prices; the answer, or why there is none.
    assert page.locator("label[for=target-accuracy]").inner_text() == "Target accuracy"
    for target in (0.75, 0.99):
        expected = client.get("/plan/cities", params={
            "target_accuracy": target, "weak_cost": 0.1, "gold_cost": 1, "model": MINILM, "recipe": "fast"}).json()
        page.fill("#target-accuracy", str(target))
        with page.expect_response(lambda r: "/plan/cities?" in r.url):
            page.click("#target-button")
        page.wait_for_function("!document.getElementById('target-button').disabled")
        answer = page.locator("#target-answer")
        text = answer.locator('[data-target="answer"]').inner_text()
        if expected["method"]:
            assert answer.get_attribute("data-state") == "reached"
            assert int(answer.get_attribute("data-n-gold")) == expected["n_gold"]
            assert int(answer.get_attribute("data-n-weak")) == expected["n_weak"]
            assert f"{expected['n_gold']:,} gold and {expected['n_weak']:,} weak" in text and "prediction" in text
        else:
            assert answer.get_attribute("data-state") == "unreached"
            assert expected["reason"] in text
    assert client.get("/plan/cities", params={
        "target_accuracy": 0.99, "weak_cost": 0.1, "gold_cost": 1, "model": MINILM}).json()["method"] is None
    page.locator(".card.target").scroll_into_view_if_needed()
    save(page, report, "desktop-target-plan.png")

    assert page.outside == [] and page.problems == []
    context.close()


@pytest.mark.slow
def test_live_allocation_then_phone(server, browser, report):
    base, client = server
    context, page = open_page(browser, base, DESKTOP)
    update_plan(page, **{"gold-cost": 1, "weak-cost": 0.1, "budget": 6})
    assert rendered_points(page) == N_MINILM_POINTS
    page.evaluate("window.__sameDocument = true")

    # Start an allocation from the page: one method, two points, one seed, a tiny training schedule.
    page.check('input[name="methods"][value="seq_sft"]')
    page.fill("#max-trials", "2")
    page.fill("#seeds", "0")
    page.click("#advanced summary")
    page.fill("#params", json.dumps(TINY))
    page.click("#allocate-button")
    page.wait_for_selector("#progress:not([hidden])")
    allocation_id = page.get_attribute("#progress", "data-allocation-id")
    assert allocation_id and f"allocation={allocation_id}" in page.url

    seen: list[tuple[str, str]] = []  # (status, trials text) as the page showed them, live
    deadline = time.monotonic() + ALLOCATION_TIMEOUT_S
    while (status := page.get_attribute("#progress", "data-status")) not in ("done", "failed"):
        seen.append((status, page.inner_text('[data-progress="trials"]')))
        assert time.monotonic() < deadline, seen[-5:]
        if len(seen) == 3:
            save(page, report, "desktop-allocation-running.png")
        page.wait_for_timeout(500)
    assert status == "done", page.inner_text("#progress")
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert any(s in ("queued", "running") and t.startswith(("0/2", "1/2")) for s, t in seen), seen
    assert page.inner_text('[data-progress="trials"]').startswith("2/2 trials done")
    assert page.eval_on_selector("#progress-bar", "el => el.value === el.max")
    assert "Best so far: seq_sft" in page.inner_text('[data-progress="best"]')

    # The recommendation on the page is GET /allocations/{id}'s.
    page.wait_for_function(f"document.getElementById('recommendation-card').dataset.allocationId === '{allocation_id}'")
    wait_for_chart(page)
    allocation = client.get(f"/allocations/{allocation_id}").json()
    assert allocation["status"] == "done"
    check_recommendation(page, allocation["recommendation"])
    assert allocation_id[:8] in page.inner_text('[data-rec="source"]')
    search = allocation["recommendation"]["search"]  # what its search used, said beside the answer
    assert (f"Search: {search['points_asked']} of {search['points_cap']} points, {search['trials_used']} trials"
            in page.inner_text('[data-rec="source"]'))
    # The frontier switched to the recipe the allocation trained with (fast with the TINY overrides:
    # recipes are never mixed), whose points are the allocation's; what the next dollars buy is
    # answered (or why not, said).
    new_points = {(t["method"], t["n_weak"], t["n_gold"]) for t in allocation["trials"] if t["status"] == "done"}
    recipes = client.get("/frontier/cities", params={"weak_cost": 0.1, "gold_cost": 1, "model": MINILM}).json()["recipes"]
    tiny = next(r["recipe"] for r in recipes if r["recipe"] != "fast" and r["recipe"].startswith("fast "))
    assert "max_steps_per_stage=3" in tiny
    assert page.input_value("#recipe") == tiny and "recipe=" in page.url
    assert rendered_points(page) == len(new_points)
    for direction in ("weak", "gold"):
        assert page.inner_text(f'[data-direction="{direction}"]').startswith(("More", *map(str, range(10))))
    save(page, report, "desktop-allocation-done-progress.png")
    page.evaluate("window.scrollTo(0, 0)")
    save(page, report, "desktop-1280x800-allocation-done.png")
    save(page, report, "desktop-full.png", full_page=True)
    plan_box, rec_box = page.locator(".card.plan").bounding_box(), page.locator(".card.rec").bounding_box()
    assert rec_box["x"] > plan_box["x"] + plan_box["width"]  # two columns
    assert page.outside == [] and page.problems == []
    context.close()

    # A phone: the same view (from the link), one column, nothing wider than the screen.
    fragment = "#" + page.url.split("#", 1)[1]
    context, page = open_page(browser, base, PHONE, fragment, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.wait_for_function(f"document.getElementById('recommendation-card').dataset.allocationId === '{allocation_id}'")
    wait_for_chart(page)
    assert page.input_value("#recipe") == tiny
    assert rendered_points(page) == len(new_points)
    check_recommendation(page, allocation["recommendation"])
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    chart = page.locator("#frontier-chart").bounding_box()
    svg = page.locator("#frontier-chart .main-svg").first.bounding_box()
    assert 300 <= chart["width"] <= PHONE["width"] and svg["width"] <= chart["width"] + 1
    boxes = [page.locator(f".card.{name}").bounding_box() for name in ("plan", "rec", "frontier", "target", "allocate", "upload")]
    for above, below in zip(boxes, boxes[1:]):
        assert below["y"] >= above["y"] + above["height"] and below["x"] == pytest.approx(above["x"], abs=1)
    save(page, report, "phone-390x844.png")
    page.locator(".card.rec").scroll_into_view_if_needed()
    save(page, report, "phone-390x844-recommendation.png")
    page.locator("#frontier-chart").scroll_into_view_if_needed()
    save(page, report, "phone-390x844-frontier.png")
    save(page, report, "phone-full.png", full_page=True)
    page.check("#compare")  # three frontiers side by side still fit
    page.wait_for_selector("#compare-table")
    wait_for_chart(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#frontier-chart").scroll_into_view_if_needed()
    save(page, report, "phone-390x844-compare.png")
    assert page.outside == [] and page.problems == []
    context.close()


def test_picking_a_builtin_task_not_registered_registers_it(server, browser):
    # A read registers nothing (GET /tasks/capitals is a 404): picking the task is the write that does.
    base, client = server
    assert client.get("/tasks/capitals").status_code == 404
    context, page = open_page(browser, base, DESKTOP)
    assert "capitals" in page.eval_on_selector_all("#task option", "els => els.map(e => e.value)")
    with page.expect_response(lambda r: r.url.endswith("/tasks") and r.request.method == "POST") as registered:
        with page.expect_response(lambda r: "/frontier/capitals?" in r.url) as frontier:
            page.select_option("#task", "capitals")
    assert registered.value.status == 201 and frontier.value.status == 200
    page.wait_for_function("document.getElementById('task-info').textContent.includes(' pool · ')")
    assert client.get("/tasks/capitals").json()["source"] == "builtin"
    assert page.outside == [] and page.problems == []  # no 404 on the way
    context.close()


def test_a_capped_listing_says_how_many_points_there_are(server, browser):
    """Past max_points (1,000 by default) the frontier lists some points: the summary says which."""
    from sqlalchemy import select

    from app.db.models import Task, Trial
    from app.db.session import session_scope

    base, client = server
    with session_scope() as session:
        task = session.scalars(select(Task).where(Task.name == "cities")).one()
        for i in range(1010):  # one-seed points of the main recipe, none of them on a frontier
            n_weak = 3000 + i
            spec = TrialSpec(task="cities", model=MINILM, method="seq_sft", n_weak=n_weak, n_gold=1, seed=0,
                             recipe="fast")
            session.add(Trial(
                key=f"dashboard-capped-{i:04d}", task_id=task.id, model=MINILM, method="seq_sft", n_weak=n_weak,
                n_gold=1, seed=0, weak_labeler="default", spec={**spec.model_dump(mode="json"), "params": {}},
                recipe="fast", task_version=spec.task_version, status="done", attempts=1, test_accuracy=0.5,
                selection_accuracy=0.5, holdout_accuracy=0.5, test_auroc=0.5, wall_s=1.0,
                result={"test_accuracy": 0.5, "n_test": task.n_test},
            ))
    frontier = client.get("/frontier/cities", params={"weak_cost": 0.1, "gold_cost": 1, "model": MINILM}).json()
    assert len(frontier["points"]) == 1000 < frontier["points_total"]
    context, page = open_page(browser, base, DESKTOP)
    summary = page.inner_text("#frontier-summary")
    assert f"1,000 of {frontier['points_total']:,} stored points shown" in summary, summary
    assert rendered_points(page) == 1000
    assert page.outside == [] and page.problems == []
    context.close()


@pytest.fixture
def keys_required(monkeypatch):
    monkeypatch.setenv("LABELMIX_REQUIRE_API_KEYS", "true")


def test_the_page_asks_for_a_key_and_keeps_it(keys_required, server, browser):
    base, client = server
    key = client.headers["authorization"].split()[1]
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(base)
    page.wait_for_selector("#key-form:not([hidden])")
    assert "API key" in page.text_content("#key-error")
    page.fill("#api-key", key)
    page.click("#key-button")
    wait_for_chart(page)  # the page loaded again, with the key: the frontier came back
    assert "cities" in page.eval_on_selector_all("#task option", "els => els.map(e => e.value)")
    assert page.is_hidden("#key-form")
    again = context.new_page()  # kept in this browser: a new tab needs no key
    again.goto(base)
    wait_for_chart(again)
    assert again.is_hidden("#key-form")
    context.close()
