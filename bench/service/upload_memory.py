"""How much memory the API takes to store an upload: `python -m bench.service.upload_memory`.

A benchmark, not a test. It starts `labelmix serve` (embedded, one process, as the README runs it) on
a fresh database (a SQLite file by default, or `--database-url`), warms it with a small upload, then
sends a CSV of `--rows` rows (text, label, weak_prob: no labeler build) and reads the server's peak
resident memory (VmHWM in /proc, reset before each measurement) against its resident memory before;
then `--concurrent` such uploads at once. A refused upload must cost nothing here either: the
hostile-upload tests check that on a 60 MB body.

    python -m bench.service.upload_memory --rows 100000 --concurrent 4 --json docs/bench/upload-memory.json
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Optional

import httpx
import typer

from .store import serving

app = typer.Typer(help=__doc__.split("\n\n")[0], add_completion=False)


def rows_csv(n: int, tag: str) -> bytes:
    """`n` distinct rows of about 90 characters each, half of each label, with weak probabilities."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label", "weak_prob"])
    for i in range(n):
        label = i % 2
        mood = "wonderful and moving" if label else "dreadful and tedious"
        writer.writerow([f"{tag} review {i}: the film was {mood}, said reviewer number {i * 7919 % 100003}",
                         label, 0.8 if label else 0.2])
    return out.getvalue().encode()


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def peak_growth_mb(pid: int, work) -> tuple[float, float, list[int]]:
    """(RSS before in MB, peak growth over it in MB, status codes) around `work()`."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    before = memory_kb(pid)["VmRSS"]
    statuses = work()
    return before / 1024, (memory_kb(pid)["VmHWM"] - before) / 1024, statuses


@app.command()
def main(
    rows: Annotated[int, typer.Option(min=20, help="rows in each uploaded CSV")] = 100_000,
    concurrent: Annotated[int, typer.Option(min=1, help="uploads sent at once in the second measurement")] = 4,
    database_url: Annotated[Optional[str], typer.Option(help="default: a new SQLite file")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the result here")] = None,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/labelmix.sqlite"
        log_path = Path(tmp) / "server.log"
        with serving(url, log_path, env={"LABELMIX_CACHE_DIR": f"{tmp}/cache"}) as (base, server):
            files = [rows_csv(rows, f"u{i}") for i in range(concurrent + 1)]

            def post(name: str, body: bytes) -> int:
                with httpx.Client(base_url=base, timeout=600) as client:
                    return client.post("/tasks", data={"name": name},
                                       files={"file": ("rows.csv", body, "text/csv")}).status_code

            assert post("warm-up", rows_csv(50, "w")) == 201, log_path.read_text()[-2000:]
            rss, one, one_status = peak_growth_mb(server.pid, lambda: [post("one", files[0])])
            rss_many, many, many_status = peak_growth_mb(server.pid, lambda: list(ThreadPoolExecutor(concurrent).map(
                lambda i: post(f"many-{i}", files[i + 1]), range(concurrent))))
    result = {
        "rows": rows, "file_mb": round(len(files[0]) / 2**20, 1), "database": url.split(":")[0],
        "rss_before_mb": round(rss, 1), "one_upload_peak_growth_mb": round(one, 1), "one_status": one_status,
        "concurrent": concurrent, "rss_before_concurrent_mb": round(rss_many, 1),
        "concurrent_peak_growth_mb": round(many, 1), "concurrent_statuses": many_status,
    }
    typer.echo(f"{rows:,} rows ({result['file_mb']} MB CSV) on {result['database']}: one upload +{one:.0f} MB "
               f"peak over {rss:.0f} MB; {concurrent} at once +{many:.0f} MB over {rss_many:.0f} MB")
    print(json.dumps(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    app()
