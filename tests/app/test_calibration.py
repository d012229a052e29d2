"""`python -m bench.calibration` on the committed calibration trials: the grid it would train is exactly the
one stored, and the coverage it measures from them is near the nominal level (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.calibration.coverage import GridData, choice, coverage
from bench.calibration.runs import Grid, adopt, load_results
from worker.engine.spec import Method, Recipe

DOCS = Path(__file__).resolve().parents[2] / "docs/calibration"
TRIALS = DOCS / "word_sentiment-fast-trials.jsonl"
TASKS = ("word_sentiment", "cities")


def grid(task: str) -> Grid:
    """`python -m bench.calibration --task <task>` with its defaults."""
    return Grid(task, "minilm-l6", Method.seq_sft, Recipe.fast, (16.0, 64.0, 256.0), (0.0, 0.25, 0.5, 1.0),
                tuple(range(6)))


@pytest.fixture(scope="module")
def data() -> GridData:
    return GridData(load_results(TRIALS))


@pytest.mark.parametrize("task", TASKS)
def test_the_stored_trials_are_the_grid_the_command_trains(task):
    """On the engine version the file's trials name (docs/benchmarks.md says which): on that version a
    rerun trains nothing; on a later one it trains the whole grid again."""
    from worker.engine.settings import engine_settings
    from worker.engine.spec import TrialSpec

    # The stored grid trained in bf16 (an AVX512-BF16 CPU); on a CPU without bf16, `auto` keys fp32 specs.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABELMIX_PRECISION", "bf16")
        engine_settings.cache_clear()
        results = load_results(DOCS / f"{task}-fast-trials.jsonl")
        (version,) = {r["spec"]["engine_version"] for r in results}  # one engine's grid
        stored = {r["key"] for r in results}
        specs = [TrialSpec(**{**s.model_dump(mode="json"), "engine_version": version}) for s in grid(task).specs()]
        assert {s.key() for s in specs} == stored and len(stored) == 72
    engine_settings.cache_clear()


@pytest.mark.parametrize("task", TASKS)
def test_coverage_is_near_nominal_and_the_old_spread_is_not(task):
    data = GridData(load_results(DOCS / f"{task}-fast-trials.jsonl"))
    assert len(data.points) == 12 and data.n_test == 1000
    for k in (1, 2, 3):
        row = coverage(data, k, reps=20)
        assert 0.85 <= row["expected_coverage"] <= 0.98, row
        assert 0.80 <= row["one_run_coverage"] <= 0.97, row
        assert row["old_plus_minus_coverage"] < 0.6
    assert not coverage(data, 2, reps=5, moderate=False)["moderated"]


def test_choice_schemes_are_scored_against_fresh_seeds(data):
    schemes = choice(data, 0.1, 1.0, k=3, reps=10)
    assert set(schemes) == {"halves", "whole", "seed_split", "whole, any tie preferred"}
    estimated = [s for name, s in schemes.items() if name != "whole, any tie preferred"]
    assert all(0 <= s["mean_regret"] < 0.1 and 0.7 <= s["coverage"] <= 1 for s in estimated)
    # Rewarding any tie picks noisy points the best merely cannot be told from: more regret.
    assert schemes["whole, any tie preferred"]["mean_regret"] > schemes["whole"]["mean_regret"]


def test_calibrate_names_a_bad_option():
    from bench.calibration.__main__ import app

    result = CliRunner().invoke(app, ["--method", "nope"])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(app, ["--seeds", "0,1", "--measured", "2"])
    assert result.exit_code == 2 and "--measured" in result.output


def test_a_grid_adopts_a_services_trials_once_and_only_its_own(tmp_path):
    """`--adopt`: a study's exported trials at the grid's specs count, so only the rest would train."""
    specs = grid("word_sentiment").specs()
    trained = [{**result, "key": spec.key(), "spec": spec.model_dump(mode="json")}
               for spec, result in zip(specs, load_results(TRIALS))]
    not_ours = specs[0].model_copy(update={"seed": 99})
    other = {**trained[0], "key": not_ours.key(), "spec": not_ours.model_dump(mode="json")}
    # As `labelmix trials export` writes it, with a trial twice and one of no spec of the grid.
    export = tmp_path / "export.jsonl"
    rows = [{"key": r["key"], "spec": r["spec"], "result": r} for r in [*trained[1:], *trained[:3], other]]
    export.write_text("".join(json.dumps(row) + "\n" for row in rows))
    results = tmp_path / "grid.jsonl"
    results.write_text(json.dumps(trained[0]) + "\n")  # already in the file: not taken again

    assert adopt(grid("word_sentiment"), results, [export]) == len(specs) - 1 == 71
    assert adopt(grid("word_sentiment"), results, [export]) == 0
    assert sorted(r["key"] for r in load_results(results)) == sorted(s.key() for s in specs)


def test_calibrate_names_a_missing_export(tmp_path):
    from bench.calibration.__main__ import app

    results = tmp_path / "r.jsonl"
    result = CliRunner().invoke(app, ["--adopt", str(tmp_path / "nope.jsonl"), "--results", str(results)])
    assert result.exit_code == 2 and "--adopt" in result.output and not results.exists()


def test_calibrate_names_an_export_it_cannot_read(tmp_path):
    from bench.calibration.__main__ import app

    export, results = tmp_path / "export.jsonl", tmp_path / "r.jsonl"
    export.write_text('{"key": "x"}\n')
    result = CliRunner().invoke(app, ["--adopt", str(export), "--results", str(results)])
    assert result.exit_code == 2 and "--adopt" in result.output and "line 1" in result.output
    assert not results.exists()
