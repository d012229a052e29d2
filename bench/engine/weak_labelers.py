"""Compare weak labelers on the built-in tasks: accuracy, AUROC, balance, calibration, build time.

    python -m bench.engine.weak_labelers --labelers bow:300,sft:minilm-l3 --tasks cities,word_sentiment

Labels are cached (LABELMIX_CACHE_DIR), so the build time printed is the one recorded when each
labeler first ran; delete the cache for fresh timings.
"""

from __future__ import annotations

import argparse

from worker.engine.tasks import BUILTIN_TASKS, get_task
from worker.engine.weak_labels import describe, weak_labels

COLUMNS = ("accuracy", "auroc", "labeled_positive_rate", "calibration_error", "mean_confidence", "n_labeler_train",
           "build_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelers", default="bow:300,sft:minilm-l3")
    parser.add_argument("--tasks", default=",".join(BUILTIN_TASKS))
    args = parser.parse_args()
    print("| task | labeler | " + " | ".join(COLUMNS) + " | warning |")
    print("|---|---|" + "---|" * len(COLUMNS) + "---|")
    for task_name in args.tasks.split(","):
        task = get_task(task_name)
        for labeler in args.labelers.split(","):
            row = describe(weak_labels(task, labeler))
            cells = [str(row[c]) for c in COLUMNS]
            warning = "; ".join(row["warnings"]) or "-"
            print(f"| {task_name} | {row['labeler']} | " + " | ".join(cells) + f" | {warning[:40]} |", flush=True)


if __name__ == "__main__":
    main()
