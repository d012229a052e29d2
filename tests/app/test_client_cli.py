"""`labelmix allocate | status | frontier | export` against a real service (uvicorn, Postgres, real
training of tiny trials): the commands a script would chain."""

from __future__ import annotations

import csv
import io
import json

import pytest
from test_hostile_uploads import server  # noqa: F401  (the API as a uvicorn process: a fixture)
from typer.testing import CliRunner

from app.cli import app

TINY = ["max_steps_per_stage=3", "eval_every=2", "n_test=32", "max_length=32"]


def labelmix(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_allocate_then_status_frontier_and_export(server):  # noqa: F811
    port, _ = server
    url = f"http://127.0.0.1:{port}"
    asked = ["allocate", "cities", "--budget", 12, "--weak-cost", 0.1, "--gold-cost", 1, "--methods", "seq_sft",
             "--max-trials", 3, "--seeds", "0", "--weak-labeler", "bow", *[a for p in TINY for a in ("-p", p)],
             "--url", url]
    allocated = labelmix(*asked)
    assert allocated.exit_code == 0, allocated.output
    assert "done, 3 of 3 trials done" in allocated.stdout and "recommended: seq_sft with" in allocated.stdout
    allocation_id = allocated.stdout.split()[1].rstrip(":")

    shown = labelmix("status", allocation_id, "--url", url, "--json")
    assert shown.exit_code == 0, shown.output
    status = json.loads(shown.stdout)
    assert status["id"] == allocation_id and status["status"] == "done"
    rec = status["recommendation"]

    # The same request again, not waited on: its id at once (answered from the stored trials).
    again = labelmix(*asked, "--no-wait", "--label", "from the cli")
    assert again.exit_code == 0 and len(again.stdout.strip()) == 36
    labelled = json.loads(labelmix("status", again.stdout.strip(), "--url", url, "--json").stdout)
    assert labelled["label"] == "from the cli" and labelled["request"] == status["request"]

    frontier = labelmix("frontier", "cities", "--weak-cost", 0.1, "--gold-cost", 1, "--budgets", "12,6", "--url", url)
    assert frontier.exit_code == 0, frontier.output
    assert "$12" in frontier.stdout and "seq_sft" in frontier.stdout

    as_json = json.loads(labelmix("export", allocation_id, "--format", "json", "--url", url).stdout)
    assert (as_json["task"], as_json["model"], as_json["recipe"], as_json["budget"]) == ("cities", "minilm-l6", "fast",
                                                                                          12.0)
    assert as_json["n_test"] > 0 and as_json["weak_cost"] == 0.1 and len(as_json["points"]) == 3
    assert all(p["low"] <= p["accuracy"] <= p["high"] for p in as_json["points"])
    assert as_json["recommendation"]["method"] == rec["method"]

    rows = list(csv.DictReader(io.StringIO(labelmix("export", allocation_id, "--format", "csv", "--url", url).stdout)))
    assert len(rows) == 3 and {r["task"] for r in rows} == {"cities"} and {r["recipe"] for r in rows} == {"fast"}
    assert {r["n_test"] for r in rows} == {str(as_json["n_test"])}
    assert sum(r["recommended"] == "True" for r in rows) == 1

    report = labelmix("export", allocation_id, "--format", "md", "--url", url).stdout
    assert report.startswith(f"# labelmix allocation {allocation_id}")
    for words in ("Task: **cities**", "recipe: fast", "$0.1 a weak label", "budget $12", "## Recommendation",
                  "Why: chosen and measured on the whole test set", "| seq_sft |"):
        assert words in report, (words, report)


def test_a_refusal_prints_the_service_reasons_and_no_service_exits_2(server):  # noqa: F811
    port, _ = server
    url = f"http://127.0.0.1:{port}"
    refused = labelmix("allocate", "cities", "--budget", -5, "--weak-cost", 0.1, "--gold-cost", 1, "--url", url)
    assert refused.exit_code == 1 and "422: budget:" in refused.output
    unknown = labelmix("status", "0" * 8 + "-0000-0000-0000-" + "0" * 12, "--url", url)
    assert unknown.exit_code == 1 and "404: allocation" in unknown.output
    assert labelmix("export", "x", "--format", "pdf", "--url", url).exit_code == 2
    assert labelmix("status", "x", "--url", "http://127.0.0.1:9").exit_code == 2
