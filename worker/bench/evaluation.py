"""Evaluation in length-sorted batches against batches in arrival order, side by side.

    python -m worker.bench.evaluation --task cities --model minilm-l6 --repeats 3

Scores the task's test set with a fresh classifier both ways, alternating, and prints the median
time of each, their ratio, and the largest score difference (padding changes nothing but float noise).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.runtime import pick_runtime, seed_everything
from worker.engine.spec import recipe_params
from worker.engine.tasks import get_task
from worker.engine.training.classifier import build_classifier
from worker.engine.training.loop import Batcher, input_limit, predict_scores


def arrival_order(classifier, batcher, texts, batch_size) -> np.ndarray:
    """What predict_scores did before: batches in the order the texts came."""
    classifier.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            logits = classifier(**batcher(texts[start : start + batch_size])).double()
            out.append((logits[:, 1] - logits[:, 0]).cpu().numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cities")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, runtime = resolve_model(args.model), pick_runtime()
    params = recipe_params("fast")
    seed_everything(0)
    classifier = build_classifier(model, runtime)
    batcher = Batcher(load_tokenizer(model), runtime, input_limit(params, classifier.backbone.config))
    texts = list(get_task(args.task).test.texts)
    times: dict[str, list[float]] = {"arrival order": [], "length-sorted": []}
    for _ in range(args.repeats):
        for name, fn in (("arrival order", arrival_order), ("length-sorted", predict_scores)):
            started = time.perf_counter()
            with torch.no_grad():
                scores = fn(classifier, batcher, texts, params.eval_batch_size)
            times[name].append(time.perf_counter() - started)
            if name == "arrival order":
                reference = scores
    gap = float(np.max(np.abs(scores - reference)))
    arrival, sorted_ = (statistics.median(times[k]) for k in ("arrival order", "length-sorted"))
    print(f"{args.task}, {len(texts)} texts, {args.model}, batch {params.eval_batch_size}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"arrival order {arrival:.2f} s · length-sorted {sorted_:.2f} s · ratio {arrival / sorted_:.2f}x · "
          f"largest score difference {gap:.1e}")


if __name__ == "__main__":
    main()
