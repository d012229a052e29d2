"""`labelmix allocate | status | frontier | export | tasks add`: the service from a terminal or a script.

Each command talks HTTP to a running service: `--url` (or LABELMIX_URL; default the local
`labelmix serve`), with the key in LABELMIX_API_KEY when the service requires keys. A refused
request prints the service's own message (which field, why) and exits 1; no answer exits 2.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Annotated, Optional

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .cli_values import numbers, params

DEFAULT_URL = "http://127.0.0.1:8765"
FINISHED = ("done", "failed")

Url = Annotated[str, typer.Option(envvar="LABELMIX_URL", help="the service (env LABELMIX_URL)")]
Key = Annotated[Optional[str], typer.Option(envvar="LABELMIX_API_KEY", show_default=False,
                                            help="API key, when the service requires one (env LABELMIX_API_KEY)")]
AsJson = Annotated[bool, typer.Option("--json", help="print the service's answer as JSON")]

out = Console()
err = Console(stderr=True)


def _client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60)


def _call(client: httpx.Client, method: str, path: str, **kwargs) -> dict:
    """The answer's JSON; a refusal prints the service's reasons and exits 1, no answer exits 2."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        err.print(f"[red]no answer from {client.base_url}: {exc}[/red]")
        raise typer.Exit(2) from None
    if response.is_success:
        return response.json()
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    for line in _reasons(detail):
        # One problem a line, unwrapped, its text as sent (a class name may hold brackets)
        err.print(f"[red]{response.status_code}: {escape(line)}[/red]", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _reasons(detail) -> list[str]:
    if isinstance(detail, list):  # a 422: which field, why
        return [f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'request'}: {d.get('msg')}" for d in detail]
    return [str(detail)]


def register(app: typer.Typer, tasks: typer.Typer) -> None:
    """The client commands on `app`; `tasks add FILE` on the engine's `tasks` group (which, alone,
    lists the built-in and hub tasks)."""
    app.command()(allocate)
    app.command()(status)
    app.command()(frontier)
    app.command()(export)
    tasks.command("add")(add_task)


def allocate(
    task: Annotated[str, typer.Argument(help="a registered or built-in task")],
    budget: Annotated[float, typer.Option(help="dollars to spend on labels")],
    weak_cost: Annotated[float, typer.Option(help="price of one weak label")],
    gold_cost: Annotated[float, typer.Option(help="price of one gold label")],
    model: Annotated[str, typer.Option()] = "minilm-l6",
    methods: Annotated[Optional[str], typer.Option(help="comma-separated (default: all the model can run)")] = None,
    max_trials: Annotated[Optional[int], typer.Option(help="points the search may measure")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="comma-separated seeds per point")] = None,
    recipe: Annotated[Optional[str], typer.Option(help="fast or paper")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="recipe override as name=value "
                                                                             "(repeatable)")] = None,
    weak_labeler: Annotated[Optional[str], typer.Option(help="who makes the weak labels (default: the task's)")]
    = None,
    stop_when_confident: Annotated[bool, typer.Option(help="stop early when more points are unlikely to matter "
                                                           "(--no-stop-when-confident: ask every max_trials point)")]
    = True,
    label: Annotated[Optional[str], typer.Option(help="a name to find it by later (GET /allocations?label=)")] = None,
    callback_url: Annotated[Optional[str], typer.Option(help="POSTed to, signed, once it ends")] = None,
    wait: Annotated[bool, typer.Option(help="follow it to its end with a progress bar (--no-wait: print the id)")]
    = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait before giving up (it keeps running)")] = 24 * 3600,
    url: Url = DEFAULT_URL,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Ask how to split a budget between weak and gold labels."""
    body: dict = {"task": task, "budget": budget, "weak_cost": weak_cost, "gold_cost": gold_cost, "model": model}
    if methods:
        body["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
    if max_trials is not None:
        body["max_trials"] = max_trials
    if seeds:
        body["seeds"] = numbers(seeds, int, "--seeds")
    if recipe:
        body["recipe"] = recipe
    if param:
        body["params"] = params(param)
    if weak_labeler:
        body["weak_labeler"] = weak_labeler
    if not stop_when_confident:
        body["stop_when_confident"] = False
    if label:
        body["label"] = label
    if callback_url:
        body["callback_url"] = callback_url
    with _client(url, key) as client:
        allocation = _call(client, "POST", "/allocate", json=body)
        if not wait:
            print(allocation["id"])
            return
        allocation = _follow(client, allocation, timeout)
    _show(allocation, as_json)
    if allocation["status"] != "done":
        raise typer.Exit(1)


def _follow(client: httpx.Client, allocation: dict, timeout: float) -> dict:
    """Poll until the allocation ends, drawing its trials done (on stderr: stdout stays the answer)."""
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:g}/{task.total:g} trials"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        shown = bar.add_task(f"allocation {allocation['id'][:8]}", total=allocation["progress"]["trials_total"])
        while allocation["status"] not in FINISHED:
            if time.monotonic() > deadline:
                err.print(f"still {allocation['status']} after {timeout:g} s: `labelmix status {allocation['id']}` "
                          "follows it later")
                raise typer.Exit(3)
            time.sleep(1.0)
            allocation = _call(client, "GET", f"/allocations/{allocation['id']}")
            progress = allocation["progress"]
            running = progress.get("running") or []
            stage = next((r["progress"] for r in running if r.get("progress")), None)
            bar.update(shown, total=progress["trials_total"], completed=progress["trials_done"] + progress["trials_failed"],
                       description=f"allocation {allocation['id'][:8]}"
                       + (f" · {stage['stage']} step {stage['step']}/{stage['total_steps']}" if stage else ""))
    return allocation


def _show(allocation: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(allocation, indent=1))
        return
    progress = allocation["progress"]
    out.print(f"allocation {allocation['id']}: {allocation['status']}, {progress['trials_done']} of "
              f"{progress['trials_total']} trials done ({progress['points_asked']} points asked)", highlight=False)
    if allocation.get("error"):
        out.print(f"error: {allocation['error']}", highlight=False)
    rec = allocation.get("recommendation")
    if rec:
        interval = rec["expected_accuracy_interval"]
        out.print(f"recommended: {rec['method']} with {rec['n_weak']} weak + {rec['n_gold']} gold labels, "
                  f"${rec['cost']:g}; expected accuracy {rec['expected_accuracy']:.3f} "
                  f"({interval['level']:.0%} interval {interval['low']:.3f}-{interval['high']:.3f})", highlight=False)
        for warning in rec.get("warnings", []):
            out.print(f"  warning ({warning['code']}): {warning['message']}", highlight=False)


# POST /tasks's formats (app.tasks.imports.FORMATS, not imported: the client commands load no service module)
FORMATS = ("csv", "jsonl", "label_studio", "argilla", "parquet", "hf_disk")
UPLOAD_SECONDS = 600  # a 50 MiB file is read and checked whole before the answer
CLASSES_LISTED = 20  # classes listed in the summary; more are counted


def add_task(
    file: Annotated[Path, typer.Argument(exists=True, readable=True, show_default=False,
                                         help="CSV, JSONL, Parquet, a Label Studio or Argilla export, a zipped saved "
                                              "dataset, or a save_to_disk folder (zipped here and sent)")],
    name: Annotated[str, typer.Option(help="the task's name: lowercase letters, digits, _ or -")],
    fmt: Annotated[Optional[str], typer.Option("--format", show_default=False,
                                               help=f"{', '.join(FORMATS)} (default: from the file name)")] = None,
    text_field: Annotated[Optional[str], typer.Option(help="the text's column (Label Studio: key of data; Argilla: "
                                                           "field)")] = None,
    label_field: Annotated[Optional[str], typer.Option(help="the gold label's column (Label Studio: choices control; "
                                                            "Argilla: question)")] = None,
    weak_field: Annotated[Optional[str], typer.Option(help="the weak label's column (Label Studio: model_version of "
                                                           "the predictions)")] = None,
    weak_score_field: Annotated[Optional[str], typer.Option(help="the weak label's confidence column, in [0, 1]")]
    = None,
    split: Annotated[Optional[str], typer.Option(help="a saved DatasetDict's split (default train)")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Upload a file of labeled rows (or an annotation tool's export) as a task; print what was kept."""
    options = {"format": fmt, "text_field": text_field, "label_field": label_field, "weak_field": weak_field,
               "weak_score_field": weak_score_field, "split": split}
    if file.is_dir():
        if fmt not in (None, "hf_disk"):
            raise typer.BadParameter(f"a folder is sent as a saved dataset (hf_disk), not {fmt}", param_hint="--format")
        options["format"] = "hf_disk"
        upload = (f"{name}.zip", _zipped(file), "application/zip")
    else:
        upload = (file.name, file.open("rb"))
    data = {"name": name, **{k: v for k, v in options.items() if v is not None}}
    try:
        with _client(url, key) as client:
            task = _call(client, "POST", "/tasks", data=data, files={"file": upload}, timeout=UPLOAD_SECONDS)
    finally:
        if not isinstance(upload[1], bytes):
            upload[1].close()
    if as_json:
        print(json.dumps(task, indent=1))
        return
    for line in _task_summary(task):
        print(line)  # plain: no markup read in class names, no wrapping at the terminal's width


def _zipped(folder: Path) -> bytes:
    """A save_to_disk folder as a zip, its files at the archive's top (paths relative to the folder)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _task_summary(task: dict) -> list[str]:
    upload = task.get("upload") or {}
    kept = f"task {task['name']}: {task['n_pool']:,} pool + {task['n_test']:,} test examples"
    if upload:
        kept += f"; {upload['rows_kept']:,} of {upload['rows_read']:,} rows kept"
        if upload.get("duplicates_dropped"):
            kept += f" ({upload['duplicates_dropped']:,} repeated an earlier row exactly)"
    lines = [kept]
    left_out = {why: n for why, n in (upload.get("left_out") or {}).items() if n}
    if left_out:
        lines.append(f"left out: {sum(left_out.values()):,} records ("
                     + ", ".join(f"{why.replace('_', ' ')} {n:,}" for why, n in left_out.items()) + ")")
    rates, classes = task.get("test_class_rates"), task.get("classes")
    if rates:
        names = classes or [str(i) for i in range(len(rates))]
        shown = [f"{c} {r:.0%}" for c, r in zip(names[:CLASSES_LISTED], rates)]
        more = f", and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
        lines.append(f"{len(names)} classes (test set): {', '.join(shown)}{more}; chance {max(rates):.2f}")
    else:
        positive = f" ({classes[1]})" if classes else ""
        if classes:
            lines.append(f"classes: {', '.join(classes)}")
        lines.append(f"positive rate{positive}: pool {task['pool_positive_rate']:.3f}, test "
                     f"{task['test_positive_rate']:.3f}")
    return lines


def status(
    allocation_id: Annotated[str, typer.Argument(help="what `labelmix allocate` printed")],
    url: Url = DEFAULT_URL,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Where an allocation stands, and its answer once it has one."""
    with _client(url, key) as client:
        _show(_call(client, "GET", f"/allocations/{allocation_id}"), as_json)


def frontier(
    task: Annotated[str, typer.Argument()],
    weak_cost: Annotated[float, typer.Option(help="price of one weak label")],
    gold_cost: Annotated[float, typer.Option(help="price of one gold label")],
    model: Annotated[Optional[str], typer.Option(help="only this model's trials")] = None,
    budgets: Annotated[Optional[str], typer.Option(help="comma-separated budgets for the best-allocation table")]
    = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """The accuracy-vs-cost frontier of a task's stored trials at these prices, and the best per budget."""
    query: dict = {"weak_cost": weak_cost, "gold_cost": gold_cost}
    if model:
        query["model"] = model
    if budgets:
        query["budgets"] = numbers(budgets, float, "--budgets")
    with _client(url, key) as client:
        body = _call(client, "GET", f"/frontier/{task}", params=query)
    if as_json:
        print(json.dumps(body, indent=1))
        return
    table = Table(title=f"{task} at ${weak_cost:g} weak / ${gold_cost:g} gold ({body.get('recipe')} recipe): "
                        "best measured allocation per budget")
    for column in ("budget", "method", "weak", "gold", "cost", "accuracy", "regime"):
        table.add_column(column)
    for row in body["best_at_budget"]:
        best = row.get("best")
        table.add_row(f"${row['budget']:g}", *(("-",) * 6 if best is None else (
            best["method"], str(best["n_weak"]), str(best["n_gold"]), f"${best['cost']:g}",
            f"{best['accuracy']:.3f}", best.get("regime", ""))))
    out.print(table)
    out.print(f"{len(body['overall'])} points on the frontier of {body.get('points_total', len(body['points']))} "
              "measured", highlight=False)


POINT_COLUMNS = ("method", "n_weak", "n_gold", "cost", "accuracy", "low", "high", "level", "n_seeds", "regime")
CONTEXT = ("allocation", "status", "task", "task_version", "n_test", "model", "recipe", "weak_labeler",
           "weak_cost", "gold_cost", "budget")


def export(
    allocation_id: Annotated[str, typer.Argument()],
    format: Annotated[str, typer.Option("--format", help="json, csv (one row per point, the context in each "
                                                         "row) or md (a report to paste)")] = "md",
    output: Annotated[Optional[Path], typer.Option("--out", help="write here (default: standard output)")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """An allocation as a report that carries its context: task, model, recipe, prices, budget, every
    point with its interval, and the recommendation with why."""
    writers = {"json": _as_json, "csv": _as_csv, "md": _as_markdown}
    if format not in writers:
        raise typer.BadParameter(f"is one of {', '.join(writers)}, got {format!r}", param_hint="--format")
    with _client(url, key) as client:
        report = _call(client, "GET", f"/allocations/{allocation_id}/report")
    text = writers[format](report)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text)
        err.print(f"wrote {output}")


def _as_json(report: dict) -> str:
    return json.dumps(report, indent=1) + "\n"


def _as_csv(report: dict) -> str:
    rec = report.get("recommendation") or {}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, [*CONTEXT, *POINT_COLUMNS, "recommended"], lineterminator="\n")
    writer.writeheader()
    for point in report["points"]:
        chosen = bool(rec) and all(point[k] == rec.get(k) for k in ("method", "n_weak", "n_gold"))
        writer.writerow({**{k: report[k] for k in CONTEXT}, **{k: point[k] for k in POINT_COLUMNS},
                         "recommended": chosen})
    return buffer.getvalue()


def _as_markdown(report: dict) -> str:
    rec = report.get("recommendation")
    lines = [
        f"# labelmix allocation {report['allocation']}",
        "",
        f"- Task: **{report['task']}** (version {report['task_version']}, {report['n_test']} test examples)",
        f"- Model: {report['model']}; recipe: {report['recipe']}"
        + (f" with {json.dumps(report['params'])}" if report["params"] else "")
        + f"; weak labels from {report['weak_labeler']}",
        f"- Prices: ${report['weak_cost']:g} a weak label, ${report['gold_cost']:g} a gold label; "
        f"budget ${report['budget']:g}",
        f"- Methods searched: {', '.join(report['methods'])}; seeds {report['seeds']}; "
        f"up to {report['max_trials']} points; status: {report['status']}",
        "",
    ]
    if rec:
        interval = rec["expected_accuracy_interval"]
        lines += [
            "## Recommendation",
            "",
            f"**{rec['method']}** with {rec['n_weak']} weak + {rec['n_gold']} gold labels, ${rec['cost']:g} "
            f"({rec['regime']}): expected accuracy {rec['expected_accuracy']:.3f}, {interval['level']:.0%} interval "
            f"{interval['low']:.3f}-{interval['high']:.3f}.",
            "",
            f"Why: {rec['accuracy_note']}.",
        ]
        lines += [f"- Warning ({w['code']}): {w['message']}" for w in rec.get("warnings", [])]
        search = rec.get("search") or {}
        if search:
            lines += ["", f"Search: {search['points_asked']} of {search['points_cap']} points, "
                          f"{search['trials_used']} trials"
                          + (f"; {search['stop_rule']['says']}" if search.get("stop_rule") else "") + "."]
        lines.append("")
    elif report.get("error"):
        lines += [f"Error: {report['error']}", ""]
    lines += ["## Points measured", "",
              "| method | weak | gold | cost | accuracy | interval | seeds | regime |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {p['method']} | {p['n_weak']} | {p['n_gold']} | ${p['cost']:g} | {p['accuracy']:.3f} | "
              f"{p['low']:.3f}-{p['high']:.3f} ({p['level']:.0%}) | {p['n_seeds']} | {p['regime']} |"
              for p in report["points"]]
    return "\n".join(lines) + "\n"
