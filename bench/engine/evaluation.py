"""Scoring a test set three ways, side by side: batches in arrival order (the engine before issue 9),
length-sorted batches, and length-sorted with the adapter merged into the base (what the engine does
on an fp32 base now).

    python -m bench.engine.evaluation --task cities --model minilm-l6 --repeats 3
    python -m bench.engine.evaluation --task word_sentiment --precision bf16 --batch-sizes 32,64,128,256

With --batch-sizes, length-sorted scoring runs at each batch size (is the recipe's evaluation batch
the fastest on this device?). Under a CPU's bf16 autocast there is no merged arm: scoring is never
merged there (a merged weight would round to bf16: the model scored otherwise than it trained).

Scores the task's test set with one classifier in each way, alternating, and prints the median
time of each, the ratios, and the largest score difference from arrival order (padding and merging
change nothing but float noise). The classifier is peft's fresh adapter with its B matrices drawn
small and non-zero, as after training (a fresh B is zero, and a zero update merges exactly).
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


# Spread of the adapters' B matrices, drawn as training leaves them: peft's fresh B is zero, which
# merges exactly and would hide the rounding a merged score shows.
ADAPTER_B_SCALE = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cities")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                        help="bf16: a CPU's autocast, where scoring is never merged (see merged_for_scoring)")
    parser.add_argument("--batch-sizes", help="comma-separated: length-sorted scoring at each (default: the recipe's)")
    args = parser.parse_args()
    model, runtime = resolve_model(args.model), pick_runtime(args.precision)
    params = recipe_params("fast")
    seed_everything(0)
    classifier = build_classifier(model, runtime)
    with torch.no_grad():
        for name, weight in classifier.named_parameters():
            if "lora_B" in name:
                weight.normal_(0.0, ADAPTER_B_SCALE)
    batcher = Batcher(load_tokenizer(model), runtime, input_limit(params, classifier.backbone.config))
    texts = list(get_task(args.task).test.texts)
    recipe_batch = params.eval_batch_size
    sizes = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [recipe_batch]
    arms = {"arrival order": lambda *a: arrival_order(*a, recipe_batch)}
    for size in sizes:
        name = "length-sorted" if sizes == [recipe_batch] else f"length-sorted, batch {size}"
        arms[name] = lambda *a, size=size: predict_scores(*a, size, merged=False)
    if runtime.autocast_dtype is None:
        arms["length-sorted, merged"] = lambda *a: predict_scores(*a, recipe_batch, merged=True)
    times: dict[str, list[float]] = {name: [] for name in arms}
    scores: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, fn in arms.items():
            started = time.perf_counter()
            with torch.no_grad():
                scores[name] = fn(classifier, batcher, texts)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(t) for name, t in times.items()}
    reference, first = scores["arrival order"], medians["arrival order"]
    print(f"{args.task}, {len(texts)} texts, {args.model}, {args.precision}, batch {recipe_batch} unless named, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    for name, median in medians.items():
        gap = float(np.max(np.abs(scores[name] - reference)))
        print(f"  {name:26} {median:6.2f} s · {first / median:.2f}x arrival order · "
              f"largest score difference {gap:.1e}")


if __name__ == "__main__":
    main()
