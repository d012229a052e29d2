"""`labelmix demo`: the main job end to end against a real (embedded) service, over HTTP."""

from __future__ import annotations

import os
import time

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .service_client import start_service, stop_service, wait_until_up

console = Console(stderr=True)


def _follow(client: httpx.Client, allocation: dict) -> dict:
    with Progress(
        TextColumn("trials"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=console,
    ) as bar:
        progress = allocation["progress"]
        job = bar.add_task("trials", total=progress["trials_total"], best="")
        while allocation["status"] not in ("done", "failed"):
            time.sleep(2)
            allocation = client.get(f"/allocations/{allocation['id']}").raise_for_status().json()
            progress = allocation["progress"]
            best = progress["best_so_far"]
            label = f"best so far {best['method']} {best['n_weak']}w+{best['n_gold']}g: {best['selection_accuracy']:.3f}" if best else ""
            bar.update(job, completed=progress["trials_done"] + progress["trials_failed"], best=label)
    return allocation


def _range(low: float, high: float) -> str | None:
    """"0.771–0.838"; None for a range of zero width (nothing measured a spread)."""
    return f"{low:.3f}–{high:.3f}" if high > low else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def expected_accuracy_text(rec: dict) -> str:
    """'0.805 (90% interval 0.771–0.838, whole test set, 2 seeds)': never a zero-width '± 0.000'."""
    estimate = f"{rec['expected_accuracy']:.3f}"
    interval = rec.get("expected_accuracy_interval")
    if interval:
        where = f"whole test set, {_plural(interval['n_seeds'], 'seed')}"
        span = _range(interval["low"], interval["high"])
        if span:
            return f"{estimate} ({interval['level']:.0%} interval {span}, {where})"
        return f"{estimate} ({where}; no spread measured)"
    # A recommendation stored before intervals (chosen on one half, reported on the other): the
    # seed sd, only when there is one.
    spread = rec.get("expected_accuracy_spread") or 0.0
    if spread > 0:
        return f"{estimate} (held-out half; seed sd {spread:.3f}, no interval)"
    return f"{estimate} (held-out half; no spread measured)"


def comparison_text(ref: dict) -> str:
    """The best minus another point, with the difference's interval; 'tie' when it holds 0."""
    what = f"{ref['method']} {ref['n_weak']} weak + {ref['n_gold']} gold (${ref['cost']:g})"
    d = ref.get("best_minus_it")
    if not d:
        return what
    verdict = "tie" if d["tie"] else "the best is ahead"
    return (f"{what}: best − it {d['difference']:+.3f} ({d['level']:.0%} interval {d['low']:+.3f} to "
            f"{d['high']:+.3f}): {verdict}")


def tie_text(rec: dict) -> str:
    ties = rec.get("ties") or []
    best = rec.get("best") or rec.get("best_on_selection")
    costs = [t["cost"] for t in ties] + ([best["cost"]] if best else [])
    cheapest = all(rec["cost"] <= c + 1e-9 for c in costs)
    return (f"{len(ties) + 1} allocations cannot be told apart; "
            + ("the cheapest is recommended" if cheapest else "more seeds would separate them"))


def _print_recommendation(rec: dict, request: dict, out: Console | None = None) -> None:
    out = out or console
    table = Table(title=f"Recommendation for ${request['budget']:g} (weak ${request['weak_cost']:g}, gold ${request['gold_cost']:g})")
    table.add_column("")
    table.add_column("")
    rows = [
        ("method", rec["method"]),
        ("buy", f"{rec['n_gold']} gold (${rec['spend_gold']:g}) + {rec['n_weak']} weak (${rec['spend_weak']:g})"),
        ("weak share", f"{rec['weak_share_of_labels']:.0%} of labels, {rec['weak_share_of_spend']:.0%} of spend"),
        ("expected accuracy", expected_accuracy_text(rec)),
    ]
    warned = {w["message"] for w in rec.get("warnings") or []}
    note = (rec.get("expected_accuracy_interval") or {}).get("note")
    if note and note not in warned:  # a note the warnings below repeat is said once
        rows.append(("interval note", note))
    if rec.get("accuracy_note"):
        rows.append(("how chosen", rec["accuracy_note"]))
    rows.append(("regime", rec["regime"]))
    if rec.get("runner_up"):
        rows.append(("runner-up", comparison_text(rec["runner_up"])))
    if rec.get("tie"):
        rows.append(("tie", tie_text(rec)))
    unspent = rec.get("unspent")
    if unspent is not None and unspent > 1e-9:
        rows.append(("unspent", f"${unspent:g} of ${request['budget']:g}"))
    for name, value in rows:
        table.add_row(name, escape(str(value)))
    out.print(table)
    for warning in rec.get("warnings") or []:
        out.print(Text(f"warning ({warning['code']}): {warning['message']}", style="yellow"))


def _print_frontier(frontier: dict, out: Console | None = None) -> None:
    out = out or console
    level = frontier.get("level", 0.9)
    recipe = f", recipe {frontier['recipe']}" if frontier.get("recipe") else ""
    table = Table(title=f"Frontier: best allocation at each budget (weak ${frontier['weak_cost']:g}, "
                        f"gold ${frontier['gold_cost']:g}{recipe})")
    for column in ("budget", "method", "n_weak", "n_gold", "cost", "test acc", f"{level:.0%} interval"):
        table.add_column(column)
    for row in frontier["best_at_budget"]:
        best = row["best"]
        if best is None:
            table.add_row(f"{row['budget']:g}", "-", "", "", "", "", "")
        else:
            interval = best.get("interval")
            span = _range(interval["low"], interval["high"]) if interval else None
            table.add_row(f"{row['budget']:g}", best["method"], str(best["n_weak"]), str(best["n_gold"]),
                          f"{best['cost']:g}", f"{best['accuracy']:.3f}", span or "-")
    out.print(table)
    for line in failed_points_text(frontier):
        out.print(line)
    if frontier.get("predicted"):
        _print_predicted(frontier, out)


def _failed(frontier: dict) -> list[dict]:
    return [p for p in frontier["points"] if p.get("seeds_failed")]


def failed_points_text(frontier: dict) -> list[str]:
    """One line per measured point with a seed that learned nothing: the chart draws these hollow, and
    a reader of a chance-level point should be told why it sits there, not left to guess."""
    return [f"learned nothing: {p['method']} {p['n_weak']} weak + {p['n_gold']} gold (${p['cost']:g}), "
            f"{p['seeds_failed']} of {len(p['seeds'])} seed(s), mean {p['accuracy']:.3f}: its test AUROC's 95% "
            "interval reaches 0.5 (drawn hollow on the chart)" for p in _failed(frontier)]


def _print_predicted(frontier: dict, out: Console) -> None:
    """The learning surface's best allocation per budget: predicted, not measured, and said so."""
    level = frontier.get("level", 0.9)
    table = Table(title="Predicted by the learning surface (not measured): best allocation at each budget")
    for column in ("budget", "method", "n_weak", "n_gold", "cost", "predicted", f"{level:.0%} band"):
        table.add_column(column, no_wrap=True)
    for p in frontier["predicted"]:
        band = _range(p["low"], p["high"]) or "-"
        table.add_row(f"{p['budget']:g}", p["method"], str(p["n_weak"]), str(p["n_gold"]), f"{p['cost']:g}",
                      f"{p['accuracy']:.3f}", band if p["in_support"] else f"{band} extrapolated")
    out.print(table)


def write_frontier_png(frontier: dict, budget: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    methods = sorted({p["method"] for p in frontier["points"]})
    for method in methods:
        pts = [p for p in frontier["points"] if p["method"] == method]
        # error bars: each point's interval (asymmetric where clipped at 0 or 1)
        below = [max(0.0, p["accuracy"] - p["interval"]["low"]) if p.get("interval") else 0.0 for p in pts]
        above = [max(0.0, p["interval"]["high"] - p["accuracy"]) if p.get("interval") else 0.0 for p in pts]
        ax.errorbar([max(p["cost"], 1e-3) for p in pts], [p["accuracy"] for p in pts], yerr=[below, above],
                    fmt="o", markersize=6, elinewidth=1, capsize=0, label=method)
    failed = _failed(frontier)
    if failed:
        ax.scatter([max(p["cost"], 1e-3) for p in failed], [p["accuracy"] for p in failed], s=110, facecolors="white",
                   edgecolors="black", linewidths=1.2, zorder=3, label="a seed learned nothing (AUROC ~ 0.5)")
    predicted = sorted((p for p in frontier.get("predicted") or [] if p["cost"] > 0), key=lambda p: p["cost"])
    if predicted:
        xs = [p["cost"] for p in predicted]
        ax.fill_between(xs, [p["low"] for p in predicted], [p["high"] for p in predicted], color="tab:pink", alpha=0.18)
        ax.plot(xs, [p["accuracy"] for p in predicted], "--", color="tab:pink", label="predicted (learning surface)")
    overall = frontier["overall"]
    ax.step([max(p["cost"], 1e-3) for p in overall], [p["accuracy"] for p in overall], where="post",
            color="black", linewidth=1.5, label="Pareto frontier")
    ax.axvline(budget, color="grey", linestyle="--", label=f"budget ${budget:g}")
    ax.set_xscale("log")
    ax.set_xlabel(f"cost ($; weak ${frontier['weak_cost']:g}, gold ${frontier['gold_cost']:g})")
    ax.set_ylabel(f"test accuracy (mean over seeds, {frontier.get('level', 0.9):.0%} intervals)")
    ax.set_title(f"labelmix frontier: {frontier['task']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _allocate(client: httpx.Client, request: dict) -> dict:
    response = client.post("/allocate", json=request)
    if response.status_code >= 400:
        raise SystemExit(f"the service refused the allocation: {response.json()['detail']}")
    answered = "answered from stored trials" if response.status_code == 200 else "running trials"
    allocation = response.json()
    console.print(f"allocation {allocation['id']} (budget ${request['budget']:g}): {answered}")
    allocation = _follow(client, allocation)
    if allocation["status"] == "failed":
        raise SystemExit(f"allocation failed: {allocation['error']}")
    return allocation


def run_demo(*, task, budget, weak_cost, gold_cost, model, max_trials, seeds, port, png, recipe, keep_serving) -> None:
    base = f"http://127.0.0.1:{port}"
    service = start_service(port)
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            wait_until_up(client, service)
            console.print(f"labelmix is up at {base} (API docs at {base}/docs)")
            # A quarter-budget allocation first: the frontier then spans two budgets, not one.
            for share, trials in ((0.25, max(2, max_trials // 2)), (1.0, max_trials)):
                request = {
                    "task": task, "budget": budget * share, "weak_cost": weak_cost, "gold_cost": gold_cost,
                    "model": model, "max_trials": trials, "seeds": seeds, "recipe": recipe,
                }
                allocation = _allocate(client, request)
            _print_recommendation(allocation["recommendation"], allocation["request"])
            frontier = client.get(
                f"/frontier/{task}",
                params={"weak_cost": weak_cost, "gold_cost": gold_cost, "model": model, "recipe": recipe,
                        "predict": "true", "budgets": [budget * 0.25, budget * 0.5, budget]},
            ).raise_for_status().json()
            _print_frontier(frontier)
            write_frontier_png(frontier, budget, png)
            console.print(f"frontier chart: {os.path.abspath(png)}")
            console.print(f"service: {base}  (allocation at {base}/allocations/{allocation['id']})")
        if keep_serving:
            console.print("serving until Ctrl-C")
            service.wait()
    finally:
        stop_service(service)
