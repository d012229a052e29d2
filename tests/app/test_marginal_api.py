"""GET /frontier/{task}/marginal: what the next dollars would buy, read off stored trials.

The trials are written straight into the database (no training); prices weak $0.1, gold $1:

  point  method       params     n_weak n_gold  test acc (seeds)   cost   from B: extra weak $ / gold $
  B      seq_sft      default       100     10  0.70 (0.69, 0.71)    20   (the base)
  W2     seq_sft      default       200     10  0.73 (0.72, 0.74)    30   10 / 0   -> more weak, nearest
  W1     seq_sft      default       300     10  0.74                 40   20 / 0   -> more weak, farther
  G1     seq_sft      default       100     20  0.75                 30    0 / 10  -> more gold
  M      seq_sft      default       200     20  0.80                 40   10 / 10  -> neither (half and half)
  MX     seq_sft      default       150     15  0.60                 20    5 / 5   -> neither at these prices
  L      seq_sft      default        50     30  0.90                 35   fewer weak labels: not a neighbour
  PX     seq_sft      lr=0.001      400     10  0.99                 50   another recipe: never compared
  LC     logconf_sft  default       500     10  0.99                 60   another method: never compared
"""

from __future__ import annotations

import itertools
import math

import pytest

from worker.engine.spec import TrialSpec

pytestmark = pytest.mark.both_databases  # the API tests here run on Postgres and on SQLite

MINILM = "minilm-l6"
PRICES = {"weak_cost": 0.1, "gold_cost": 1}
ROWS = {
    "B": ("seq_sft", {}, 100, 10, [0.69, 0.71]),
    "W2": ("seq_sft", {}, 200, 10, [0.72, 0.74]),
    "W1": ("seq_sft", {}, 300, 10, [0.74]),
    "G1": ("seq_sft", {}, 100, 20, [0.75]),
    "M": ("seq_sft", {}, 200, 20, [0.80]),
    "MX": ("seq_sft", {}, 150, 15, [0.60]),
    "L": ("seq_sft", {}, 50, 30, [0.90]),
    "PX": ("seq_sft", {"lr": 0.001}, 400, 10, [0.99]),
    "LC": ("logconf_sft", {}, 500, 10, [0.99]),
}


def insert_rows(task_id: int) -> None:
    from app.db.models import Trial
    from app.db.session import session_scope

    keys = (f"marginal-test-{i:04d}" for i in itertools.count())
    with session_scope() as session:
        for method, params, n_weak, n_gold, accuracies in ROWS.values():
            for seed, accuracy in enumerate(accuracies):
                spec = TrialSpec(task="cities", model=MINILM, method=method, n_weak=n_weak, n_gold=n_gold, seed=seed)
                session.add(
                    Trial(
                        key=next(keys), task_id=task_id, model=MINILM, method=method, n_weak=n_weak, n_gold=n_gold,
                        seed=seed, weak_labeler="default", spec={**spec.model_dump(mode="json"), "params": params},
                        recipe=spec.recipe, task_version=spec.task_version, status="done", attempts=1, test_accuracy=accuracy, selection_accuracy=accuracy,
                        holdout_accuracy=accuracy, test_auroc=0.5, wall_s=1.0,
                    )
                )


@pytest.fixture
def stored(api):
    from sqlalchemy import select

    from app.db.models import Task
    from app.db.session import session_scope

    assert api.post("/tasks", data={"dataset": "cities"}).status_code == 201  # a read registers nothing
    with session_scope() as session:
        insert_rows(session.scalars(select(Task.id).where(Task.name == "cities")).one())
    return api


def marginal(api, **params):
    response = api.get("/frontier/cities/marginal", params={**PRICES, **params})
    assert response.status_code == 200, response.text
    return response.json()


def counts(point: dict) -> tuple[str, int, int]:
    return point["method"], point["n_weak"], point["n_gold"]


@pytest.mark.parametrize("anchored", [True, False], ids=["anchored", "best-within-budget"])
def test_nearest_neighbour_each_way(stored, anchored):
    anchor = {"method": "seq_sft", "n_weak": 100, "n_gold": 10} if anchored else {}
    body = marginal(stored, budget=20, **anchor)
    assert body["reason"] is None
    assert counts(body["base"]) == ("seq_sft", 100, 10)  # unanchored: the only point within $20
    assert body["base"]["accuracy"] == pytest.approx(0.70)

    weak = body["more_weak"]
    assert counts(weak["point"]) == ("seq_sft", 200, 10)  # W2, nearer than W1; M splits its extra
    assert (weak["extra_weak"], weak["extra_gold"], weak["extra_spend"]) == (100, 0, pytest.approx(10))
    assert weak["accuracy_gain"] == pytest.approx(0.03)
    assert weak["gain_per_dollar"] == pytest.approx(0.003)
    assert weak["noise"] == pytest.approx(math.hypot(0.01414, 0.01414), abs=1e-3)  # two seeds each side
    assert weak["reason"] is None

    gold = body["more_gold"]
    assert counts(gold["point"]) == ("seq_sft", 100, 20)  # G1; L has fewer weak labels than the base
    assert (gold["extra_weak"], gold["extra_gold"], gold["extra_spend"]) == (0, 10, pytest.approx(10))
    assert gold["accuracy_gain"] == pytest.approx(0.05)
    assert gold["gain_per_dollar"] == pytest.approx(0.005)
    assert body["better"] == "gold"


def test_only_the_same_recipe_counts(stored):
    # From W1 the only stored point with more weak labels and as many gold is PX (other params)
    # or LC (other method): neither is a neighbour, so the answer is null, with the reason.
    body = marginal(stored, budget=40, method="seq_sft", n_weak=300, n_gold=10, max_extra=100)
    assert counts(body["base"]) == ("seq_sft", 300, 10)
    for step in (body["more_weak"], body["more_gold"]):
        assert step["point"] is None and step["gain_per_dollar"] is None and step["accuracy_gain"] is None
        assert "no stored seq_sft trial" in step["reason"]
    assert body["better"] is None


def test_max_extra_bounds_the_step(stored):
    body = marginal(stored, budget=20, max_extra=5)
    assert body["max_extra"] == 5
    assert body["more_weak"]["gain_per_dollar"] is None and "$5 more" in body["more_weak"]["reason"]
    assert body["more_gold"]["gain_per_dollar"] is None and "adds gold labels" in body["more_gold"]["reason"]
    # Wider: W1 is still not chosen over the nearer W2.
    wide = marginal(stored, budget=20, max_extra=1000)
    assert counts(wide["more_weak"]["point"]) == ("seq_sft", 200, 10)


def test_direction_follows_the_prices(stored):
    # MX adds 50 weak and 5 gold labels to B: half and half at weak $0.1 (neither way), mostly
    # weak at weak $1 ($50 of $55), mostly gold at weak $0.01 ($5 of $5.5), and nearest each time.
    dear = marginal(stored, weak_cost=1, budget=110, method="seq_sft", n_weak=100, n_gold=10)
    assert counts(dear["more_weak"]["point"]) == ("seq_sft", 150, 15)
    assert dear["more_weak"]["extra_spend"] == pytest.approx(55)
    assert counts(dear["more_gold"]["point"]) == ("seq_sft", 100, 20)

    cheap = marginal(stored, weak_cost=0.01, budget=11, method="seq_sft", n_weak=100, n_gold=10)
    assert counts(cheap["more_gold"]["point"]) == ("seq_sft", 150, 15)
    assert cheap["more_gold"]["extra_spend"] == pytest.approx(5.5)
    assert cheap["more_gold"]["accuracy_gain"] == pytest.approx(-0.10)  # a loss is reported as one
    assert counts(cheap["more_weak"]["point"]) == ("seq_sft", 200, 10)


def test_no_base_says_why(stored):
    body = marginal(stored, budget=1)
    assert body["base"] is None and body["more_weak"] is None and body["more_gold"] is None
    assert "$1 or less" in body["reason"]
    missing = marginal(stored, budget=20, method="icl", n_weak=1, n_gold=1)
    assert missing["base"] is None and "no stored trial of icl" in missing["reason"]
    other_model = marginal(stored, budget=20, model="smollm2-135m")
    assert other_model["base"] is None and other_model["model"] == "smollm2-135m"


def test_anchor_is_all_or_nothing(stored):
    response = stored.get("/frontier/cities/marginal", params={**PRICES, "budget": 20, "method": "seq_sft"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "method"


@pytest.mark.parametrize("field", ["budget", "weak_cost", "max_extra"])
def test_amounts_must_be_positive(api, field):
    params = {**PRICES, "budget": 20, field: 0}
    response = api.get("/frontier/cities/marginal", params=params)
    assert response.status_code == 422
    assert any(d["loc"][-1] == field for d in response.json()["detail"])


def test_unknown_task_is_404(api):
    assert api.get("/frontier/nope/marginal", params={**PRICES, "budget": 20}).status_code == 404
