"""How well the learning surface predicts measured study points it did not see (leave-one-point-out).

    python -m bench.surface_report docs/studies/study-word_sentiment-fast.json [more studies ...]

Each study (the JSON `labelmix study --json` keeps) is split by method; each method's points become
Observations whose variance is the seed scatter of the mean (sd^2 / seeds) plus the test set's own
sampling variance acc (1 - acc) / N_TEST, which is shared by all seeds and so not in their sd.
Prints one markdown row per study and method.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from app.stats.surface import Observation, fit_surface

N_TEST = 1000  # test examples per trial in the stored studies


def observations(study: dict) -> dict[str, list[Observation]]:
    by_method: dict[str, list[Observation]] = defaultdict(list)
    for p in study["points"]:
        if not p.get("seeds_done") or p.get("accuracy") is None:
            continue
        acc, sd = p["accuracy"], p.get("accuracy_sd") or 0.0
        var = sd**2 / p["seeds_done"] + acc * (1 - acc) / N_TEST
        by_method[p["method"]].append(Observation(p["n_weak"], p["n_gold"], acc, var))
    return dict(by_method)


def report(paths: list[str]) -> str:
    lines = [
        "| study | method | points | chosen model | LOO rmse | LOO mae | 90% coverage | candidate rmse |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        study = json.loads(Path(path).read_text())
        name = study.get("task") or Path(path).stem
        recipe = (study.get("request") or {}).get("recipe")
        label = f"{name} ({recipe})" if recipe else name
        for method, obs in sorted(observations(study).items()):
            loo = fit_surface(obs).loo
            cands = ", ".join(f"{m} {r:.4f}" for m, r in sorted(loo["candidates"].items()))
            lines.append(
                f"| {label} | {method} | {loo['n_points']} | {loo['model']} | {loo['rmse']:.4f} | "
                f"{loo['mae']:.4f} | {loo['coverage_90']:.2f} | {cands} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        sys.exit("usage: python -m bench.surface_report STUDY.json [STUDY.json ...]")
    print(report(paths))


if __name__ == "__main__":
    main()
