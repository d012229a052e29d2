"""`labelmix study`: run the paper's grid for a task through a service, then print and plot it."""

from __future__ import annotations

import json
import os
import time

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .service_client import connect
from .study_plot import write_study_png

console = Console(stderr=True)
POLL_S = 2.0


def _follow(client: httpx.Client, study: dict) -> dict:
    with Progress(
        TextColumn("trials"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console,
    ) as bar:
        job = bar.add_task("trials", total=study["trials"]["total"], note="")
        while study["status"] not in ("done", "failed"):
            time.sleep(POLL_S)
            study = client.get(f"/studies/{study['id']}").raise_for_status().json()
            counts = study["trials"]
            note = f"{counts['running']} running, {counts['failed']} failed" if counts["failed"] else ""
            bar.update(job, completed=counts["done"] + counts["failed"], note=note)
    return study


def _with_interval(point: dict) -> str:
    """"0.779 (0.751-0.806)": the mean and its interval; the older "± sd" when a study has none."""
    iv = point.get("interval")
    if not iv:
        return f"{point['accuracy']:.3f} ± {point['accuracy_sd']:.3f}"
    return f"{point['accuracy']:.3f} ({iv['low']:.3f}-{iv['high']:.3f})"


def _cell(point: dict | None, winner: dict | None) -> str:
    if point is None:
        return "[dim]skipped[/dim]"
    if not point["seeds_done"]:
        # An older service counted errored trials as seeds_failed and had no seeds_errored.
        return "[dim]failed[/dim]" if point.get("seeds_errored", point["seeds_failed"]) else "…"
    text = _with_interval(point)
    if _unstable(point):
        text += " [red]![/red]"
    best = winner and (winner["method"], winner["n_weak"], winner["n_gold"]) == (
        point["method"], point["n_weak"], point["n_gold"])
    return f"[bold green]{text}[/bold green]" if best else text


def _unstable(point: dict) -> bool:
    """Some done seed learned nothing, or the seeds fall into groups: the mean describes no seed.

    A study from an older service (no seeds_errored) counted errored trials as seeds_failed: not this."""
    return "seeds_errored" in point and bool(point["seeds_failed"] or point.get("seeds_split"))


def print_study(study: dict) -> None:
    request = study["request"]
    winners = {w["budget"]: w["best"] for w in study["winners"]}
    cells = {(p["method"], p["budget"], p["weak_share"]): p for p in study["points"]}
    for method in request["methods"]:
        table = Table(
            title=f"{study['task']} · {method}: test accuracy over {len(request['seeds'])} seed(s), "
                  "mean (90% interval over seeds and test examples)",
            caption=f"columns: share of spend on weak labels (weak ${request['weak_cost']:g}, gold "
                    f"${request['gold_cost']:g}); {request['model']}, recipe {request['recipe']}; "
                    "! = a seed learned nothing or the seeds split",
        )
        table.add_column("budget", justify="right")
        for share in request["weak_shares"]:
            table.add_column(f"{share:.0%} weak", justify="right")
        for budget in request["budgets"]:
            table.add_row(f"${budget:g}", *(_cell(cells.get((method, budget, s)), winners.get(budget))
                                             for s in request["weak_shares"]))
        console.print(table)
    for w in study["winners"]:
        best = w["best"]
        if best is None:
            console.print(f"${w['budget']:g}: no finished point")
            continue
        line = (f"${w['budget']:g}: {w['regime']} wins: {best['method']} with {best['n_weak']} weak + "
                f"{best['n_gold']} gold labels, {_with_interval(best)}")
        if w["runner_up"]:
            r = w["runner_up"]
            line += f"; runner-up {r['method']} {r['weak_share']:.0%} weak {r['accuracy']:.3f} (gap {w['gap']:.3f}"
            gap = w.get("gap_interval")
            if gap:
                line += f", {gap['level']:.0%} interval {gap['low']:+.3f} to {gap['high']:+.3f}"
                line += ": a tie" if gap["tie"] else ""
            line += ")"
        console.print(line)
    s = study["stage_summary"]
    if s["gold_stages"]:
        console.print(f"gold stages: {s['gold_stages']}; kept their start {s['kept_start']}, fixed schedule "
                      f"{s['fixed_schedule']}, best at the first evaluation {s['at_first_evaluation']}, "
                      f"later {s['past_first_evaluation']}")
    if study["skipped"]:
        console.print(f"{len(study['skipped'])} point(s) skipped, e.g. ${study['skipped'][0]['budget']:g} "
                      f"{study['skipped'][0]['weak_share']:.0%} weak: {study['skipped'][0]['reason']}")


def run_study(request: dict, *, url: str | None, port: int, png: str, json_path: str | None) -> dict:
    with connect(url, port) as client:
        console.print(f"labelmix service at {client.base_url}")
        response = client.post("/studies", json=request)
        if response.status_code >= 400:
            raise SystemExit(f"the service refused the study: {response.json()['detail']}")
        study = response.json()
        stored = "every trial already stored" if response.status_code == 200 else "running trials"
        console.print(f"study {study['id']}: {study['trials']['total']} trials, {stored}")
        study = _follow(client, study)
    print_study(study)
    write_study_png(study, png)
    console.print(f"figure: {os.path.abspath(png)}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(study, f, indent=2)
        console.print(f"study JSON: {os.path.abspath(json_path)}")
    if study["status"] == "failed":
        raise SystemExit("every trial of the study failed: see GET /trials?status=failed for the reasons")
    return study
