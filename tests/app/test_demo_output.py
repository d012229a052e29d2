"""What `labelmix demo` prints for a recommendation and a frontier (no service, no training).

The recommendation and the frontier are the service's own (`recommend.recommendation`,
`frontier.frontier`, through the API's response models) over trials built in memory, each with the
per-example correctness a real trial records; the printing goes to a recording rich Console.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from rich.console import Console

from app.allocations.recommend import recommendation
from app.db.models import Trial
from app.demo import _print_frontier, _print_recommendation, expected_accuracy_text, write_frontier_png
from app.results.frontier import frontier
from app.results.points import group_trials
from app.results.schemas.frontier import FrontierOut
from app.stats.prices import Prices
from worker.engine.metrics import pack_correct

N_TEST = 1000
PRICES = {"weak_cost": 0.1, "gold_cost": 1.0}
# method, n_weak, n_gold, test accuracy per seed (prices weak $0.1, gold $1)
TWO_SEEDS = [
    ("seq_sft", 100, 0, [0.66, 0.68]),
    ("seq_sft", 0, 20, [0.72, 0.74]),
    ("seq_sft", 100, 10, [0.74, 0.76]),
    ("seq_sft", 200, 10, [0.78, 0.80]),
    ("seq_sft", 100, 20, [0.77, 0.79]),
    ("seq_sft", 300, 20, [0.83, 0.85]),
    ("logconf_sft", 300, 0, [0.75, 0.77]),
]
ONE_SEED = [(m, w, g, accuracies[:1]) for m, w, g, accuracies in TWO_SEEDS]
ZERO_WIDTH = re.compile(r"±\s*0\.000")


def trials(rows, seed: int = 0) -> list[Trial]:
    """Done trials as the worker stores them: the selection half at the accuracy, the rest 0.005 lower."""
    rng = np.random.default_rng(seed)
    ids = itertools.count(1)
    out = []
    for method, n_weak, n_gold, accuracies in rows:
        for s, accuracy in enumerate(accuracies):
            holdout = round(accuracy - 0.005, 4)
            halves = []
            for size, acc in ((N_TEST // 2, accuracy), (N_TEST - N_TEST // 2, holdout)):
                hits = np.zeros(size, dtype=bool)
                hits[: round(acc * size)] = True
                rng.shuffle(hits)
                halves.append(hits)
            out.append(Trial(
                id=next(ids), key=f"demo-output-{len(out)}", task_id=1, model="minilm-l6", method=method, n_weak=n_weak,
                n_gold=n_gold, seed=s, weak_labeler="default", recipe="fast", spec={"params": {}}, status="done",
                test_accuracy=accuracy, selection_accuracy=accuracy, holdout_accuracy=holdout,
                result={"n_test": N_TEST, "test_correct": pack_correct(np.concatenate(halves))},
            ))
    return out


def recommend(rows, budget: float, **kwargs) -> tuple[dict, dict]:
    request = {"task": "cities", "budget": budget, **PRICES}
    points = [p for p in group_trials(trials(rows)) if p.cost(Prices(PRICES["weak_cost"], PRICES["gold_cost"])) <= budget + 1e-9]
    return recommendation(points, request, majority_rate=kwargs.get("majority_rate", 0.5),
                          weak_label_accuracy=kwargs.get("weak_label_accuracy", 0.66)), request


def printed(print_fn, *args) -> tuple[str, str]:
    """(plain text, text with ANSI styles) of what print_fn wrote."""
    out = Console(record=True, width=200, force_terminal=True, color_system="standard")
    print_fn(*args, out=out)
    return out.export_text(clear=False), out.export_text(styles=True)


def test_recommendation_prints_its_interval_runner_up_warnings_and_unspent_budget():
    rec, request = recommend(TWO_SEEDS, budget=35)
    assert rec["tie"] and rec["unspent"] > 0 and rec["runner_up"] and rec["warnings"]
    text, styled = printed(_print_recommendation, rec, request)

    interval = rec["expected_accuracy_interval"]
    part = "whole test set"  # what the recommendation is chosen and measured on
    expected = (f"{rec['expected_accuracy']:.3f} (90% interval {interval['low']:.3f}–{interval['high']:.3f}, "
                f"{part}, {interval['n_seeds']} seeds)")
    assert expected_accuracy_text(rec) == expected and expected in text
    assert interval["high"] > interval["low"]
    # The runner-up: the difference and its interval, "tie" when the interval holds 0.
    d = rec["runner_up"]["best_minus_it"]
    comparison = f"best − it {d['difference']:+.3f} (90% interval {d['low']:+.3f} to {d['high']:+.3f})"
    assert comparison in text
    assert ("tie" in text.split(comparison, 1)[1].splitlines()[0]) == d["tie"]
    # Every warning, in yellow; the unspent budget.
    for warning in rec["warnings"]:
        assert warning["message"][:60] in text
        assert re.search(r"\x1b\[33m[^\n]*warning \(" + re.escape(warning["code"]) + r"\)", styled), styled
    assert "unspent" in text and f"${rec['unspent']:g} of $35" in text
    assert "±" not in text


def test_one_seed_recommendation_says_its_note_and_never_a_zero_width_spread():
    rec, request = recommend(ONE_SEED, budget=60)
    interval = rec["expected_accuracy_interval"]
    assert rec["expected_accuracy_spread"] == 0.0 and interval["n_seeds"] == 1 and interval["note"]
    text, _ = printed(_print_recommendation, rec, request)
    assert not ZERO_WIDTH.search(text) and "±" not in text
    part = "whole test set"  # what the recommendation is chosen and measured on
    assert f"90% interval {interval['low']:.3f}–{interval['high']:.3f}, {part}, 1 seed)" in text
    assert interval["note"][:60] in " ".join(text.split())  # as a row, or as a warning: said once at least
    assert " ".join(text.split()).count(" ".join(interval["note"].split())[:60]) == 1
    assert "unspent" not in text or rec["unspent"] > 0


def test_a_recommendation_stored_before_intervals_prints_no_zero_width_spread():
    rec, request = recommend(ONE_SEED, budget=60)
    old = {k: v for k, v in rec.items() if k not in (
        "expected_accuracy_interval", "runner_up", "ties", "tie", "warnings", "unspent", "level")}
    text, _ = printed(_print_recommendation, old, request)
    assert not ZERO_WIDTH.search(text) and "no spread measured" in text
    two, request = recommend(TWO_SEEDS, budget=35)
    old = {k: v for k, v in two.items() if k != "expected_accuracy_interval"}
    assert f"seed sd {two['expected_accuracy_spread']:.3f}" in expected_accuracy_text(old)


def test_frontier_prints_intervals_and_the_predicted_best_marked_predicted():
    body = frontier(group_trials(trials(TWO_SEEDS)), budgets=[16, 32, 64], predict=True, **PRICES)
    out = FrontierOut(task="cities", model="minilm-l6", recipe="fast", recipes=[{"recipe": "fast", "n_trials": 14}],
                      **body).model_dump(mode="json")
    assert out["predicted"] and len(out["predicted"]) == 3
    text, _ = printed(_print_frontier, out)
    assert "90% interval" in text and "recipe fast" in " ".join(text.split())  # a title wraps to its table
    for row in out["best_at_budget"]:
        interval = row["best"]["interval"]
        assert f"{interval['low']:.3f}–{interval['high']:.3f}" in text
    table = text[text.index("Predicted by the learning surface (not measured)"):]
    predicted_rows = [line for line in table.splitlines() if "│" in line]
    assert len(predicted_rows) == len(out["predicted"])
    for p, line in zip(out["predicted"], predicted_rows):
        assert f"{p['accuracy']:.3f}" in line and f"{p['low']:.3f}–{p['high']:.3f}" in line
    assert "Predicted by the learning surface (not measured)" in " ".join(text.split())
    assert "±" not in text

    # Without predict, no predicted table.
    plain = FrontierOut(task="cities", model="minilm-l6", recipe="fast", recipes=[],
                        **frontier(group_trials(trials(TWO_SEEDS)), budgets=[16], **PRICES)).model_dump(mode="json")
    text, _ = printed(_print_frontier, plain)
    assert "predicted" not in text.lower()


def test_a_point_whose_seed_learned_nothing_is_named_and_drawn_hollow(tmp_path):
    """A chance-level point on the demo's chart is explained, not left without a word."""
    stored = trials(TWO_SEEDS)
    for t in stored:
        t.result = {**t.result, "learned": not (t.method == "seq_sft" and (t.n_weak, t.n_gold) == (0, 20) and t.seed == 1)}
    body = frontier(group_trials(stored), budgets=[16, 32], **PRICES)
    out = FrontierOut(task="cities", model="minilm-l6", recipe="fast", recipes=[], **body).model_dump(mode="json")
    text, _ = printed(_print_frontier, out)
    text = " ".join(text.split())
    assert "learned nothing: seq_sft 0 weak + 20 gold ($20), 1 of 2 seed(s), mean 0.730" in text
    assert text.count("learned nothing") == 1
    import matplotlib.pyplot as plt

    drawn = []
    original = plt.Axes.scatter
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plt.Axes, "scatter", lambda ax, x, y, **kw: drawn.append((list(x), list(y), kw))
                      or original(ax, x, y, **kw))
        write_frontier_png(out, 32, str(tmp_path / "frontier.png"))
    assert [(x, y) for x, y, _ in drawn] == [([20.0], [0.73])] and drawn[0][2]["facecolors"] == "white"
    assert (tmp_path / "frontier.png").stat().st_size > 10_000
