"""`labelmix demo`: the main job end to end against a real (embedded) service, over HTTP."""

from __future__ import annotations

import os
import time

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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


def _print_recommendation(rec: dict, request: dict) -> None:
    table = Table(title=f"Recommendation for ${request['budget']:g} (weak ${request['weak_cost']:g}, gold ${request['gold_cost']:g})")
    table.add_column("")
    table.add_column("")
    rows = [
        ("method", rec["method"]),
        ("buy", f"{rec['n_gold']} gold (${rec['spend_gold']:g}) + {rec['n_weak']} weak (${rec['spend_weak']:g})"),
        ("weak share", f"{rec['weak_share_of_labels']:.0%} of labels, {rec['weak_share_of_spend']:.0%} of spend"),
        ("expected accuracy", f"{rec['expected_accuracy']:.3f} ± {rec['expected_accuracy_spread']:.3f} (held-out half)"),
        ("chosen on", f"{rec['selection_accuracy']:.3f} (selection half)"),
        ("regime", rec["regime"]),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _print_frontier(frontier: dict) -> None:
    table = Table(title=f"Frontier: best allocation at each budget (weak ${frontier['weak_cost']:g}, gold ${frontier['gold_cost']:g})")
    for column in ("budget", "method", "n_weak", "n_gold", "cost", "holdout acc"):
        table.add_column(column)
    for row in frontier["best_at_budget"]:
        best = row["best"]
        if best is None:
            table.add_row(f"{row['budget']:g}", "-", "", "", "", "")
        else:
            table.add_row(f"{row['budget']:g}", best["method"], str(best["n_weak"]), str(best["n_gold"]),
                          f"{best['cost']:g}", f"{best['holdout_accuracy']:.3f}")
    console.print(table)


def write_frontier_png(frontier: dict, budget: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    methods = sorted({p["method"] for p in frontier["points"]})
    for method in methods:
        pts = [p for p in frontier["points"] if p["method"] == method]
        ax.scatter([max(p["cost"], 1e-3) for p in pts], [p["accuracy"] for p in pts], label=method, s=40)
    overall = frontier["overall"]
    ax.step([max(p["cost"], 1e-3) for p in overall], [p["accuracy"] for p in overall], where="post",
            color="black", linewidth=1.5, label="Pareto frontier")
    ax.axvline(budget, color="grey", linestyle="--", label=f"budget ${budget:g}")
    ax.set_xscale("log")
    ax.set_xlabel(f"cost ($; weak ${frontier['weak_cost']:g}, gold ${frontier['gold_cost']:g})")
    ax.set_ylabel("test accuracy (mean over seeds)")
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
            wait_until_up(client)
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
                params={"weak_cost": weak_cost, "gold_cost": gold_cost, "model": model,
                        "budgets": [budget * 0.25, budget * 0.5, budget]},
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
