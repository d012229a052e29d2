"""A training step four ways, side by side: fp32 and bf16 autocast, each with SDPA and eager attention.

    python -m bench.engine.attention --task word_sentiment --model minilm-l6 --repeats 3 --steps 5

One process, one torch thread, the same batches of the task's pool statements (batch 32), forward,
backward and the AdamW step, the four arms alternating; prints each arm's median seconds per step,
its forward and backward shares and its speed against fp32 SDPA, and writes them as JSON with --json.
Why the engine loads backbones with eager attention under a CPU's bf16 autocast (Runtime.attention):
torch's CPU flash-attention backward in bf16 is slower than the rest of the step put together.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.precision import Precision
from worker.engine.runtime import Runtime, seed_everything
from worker.engine.tasks import get_task
from worker.engine.training.classifier import build_classifier
from worker.engine.training.loop import Batcher, input_limit
from worker.engine.spec import recipe_params

ARMS = [("fp32", "sdpa"), ("fp32", "eager"), ("bf16", "sdpa"), ("bf16", "eager")]


class Arm:
    def __init__(self, model_name: str, precision: str, attention: str, tokenizer, texts: list[str]):
        precision = Precision(precision)
        self.runtime = Runtime(torch.device("cpu"), torch.float32, precision)
        from worker.engine.models import load_backbone

        model = resolve_model(model_name)
        seed_everything(0)
        backbone = load_backbone(model, torch.float32, attention=attention)
        self.classifier = build_classifier(model, self.runtime, backbone=backbone).train()
        self.optimizer = torch.optim.AdamW(self.classifier.trainable_parameters(), lr=1e-4, fused=True)
        params = recipe_params("fast")
        self.batcher = Batcher(tokenizer, self.runtime, input_limit(params, backbone.config))
        self.texts = texts

    def step(self, batch: list[str]) -> tuple[float, float]:
        """(forward seconds, backward and optimizer seconds)."""
        inputs = self.batcher(batch)
        started = time.perf_counter()
        logits = self.classifier(**inputs)
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
        forward = time.perf_counter()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return forward - started, time.perf_counter() - forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="word_sentiment")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="steps per arm per repeat")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    model = resolve_model(args.model)
    tokenizer = load_tokenizer(model)
    pool = list(get_task(args.task).pool.texts)
    rng = np.random.default_rng(0)
    batches = [[pool[i] for i in rng.choice(len(pool), args.batch_size, replace=False)] for _ in range(args.steps)]
    arms = {arm: Arm(args.model, *arm, tokenizer, pool) for arm in ARMS}
    for arm in arms.values():  # warm up: the first steps allocate
        arm.step(batches[0])
    times: dict[tuple, list[tuple[float, float]]] = {arm: [] for arm in ARMS}
    for _ in range(args.repeats):
        for name, arm in arms.items():
            steps = [arm.step(batch) for batch in batches]
            times[name].append((statistics.mean(f for f, _ in steps), statistics.mean(b for _, b in steps)))

    base = statistics.median(f + b for f, b in times[("fp32", "sdpa")])
    rows = []
    for (precision, attention), runs in times.items():
        step = statistics.median(f + b for f, b in runs)
        forward = statistics.median(f for f, _ in runs)
        rows.append({"precision": precision, "attention": attention, "seconds_per_step": round(step, 4),
                     "forward_s": round(forward, 4), "backward_and_step_s": round(step - forward, 4),
                     "speed_vs_fp32_sdpa": round(base / step, 2)})
        print(f"{precision:5} {attention:6} step {step:.3f} s (forward {forward:.3f}, backward+step {step - forward:.3f})"
              f"  {base / step:.2f}x fp32 sdpa")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"task": args.task, "model": args.model, "batch_size": args.batch_size,
                                         "repeats": args.repeats, "steps": args.steps, "torch": torch.__version__,
                                         "arms": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
