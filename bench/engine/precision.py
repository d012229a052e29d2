"""fp32 against bf16 on this machine: one training step of the strong model, in the same process.

    python -m bench.engine.precision [--task word_sentiment] [--tokens 0,32] [--threads 1]

Each arm (fp32; bf16 autocast around an fp32 base, what LABELMIX_PRECISION=bf16 runs on a CPU; a bf16
base, what a GPU runs) trains its own classifier on the same batch of 32 pool texts, the arms taking
turns (the machine is shared and noisy: turns keep them under the same load); the median of 3 rounds
of 5 steps each. `--tokens N` repeats each text until its inputs are about N tokens long (0: the
task's own texts), since bf16's gain grows with the matrices: a CPU pays for casting weights per step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.precision import Precision, cpu_supports_bf16
from worker.engine.runtime import Runtime, seed_everything
from worker.engine.tasks import get_task
from worker.engine.training.classifier import build_classifier
from worker.engine.training.loop import Batcher

ARMS = {
    "fp32": (torch.float32, Precision.fp32),
    "bf16 autocast": (torch.float32, Precision.bf16),
    "bf16 base": (torch.bfloat16, Precision.fp32),
}


def measure(task: str, model_name: str, tokens: int, rounds: int = 3, steps: int = 5) -> dict:
    model = resolve_model(model_name)
    tokenizer = load_tokenizer(model)
    texts = get_task(task).pool.texts[:32]
    if tokens:
        per_text = len(tokenizer(texts[0])["input_ids"])
        texts = [" ".join([t] * max(1, round(tokens / per_text))) for t in texts]
    arms = {}
    for name, (dtype, precision) in ARMS.items():
        runtime = Runtime(torch.device("cpu"), dtype, precision)
        seed_everything(0)
        classifier = build_classifier(model, runtime)
        optimizer = torch.optim.AdamW(classifier.trainable_parameters(), lr=1e-3)
        arms[name] = (classifier, Batcher(tokenizer, runtime, 512), optimizer)

    def step(name: str) -> None:
        classifier, batcher, optimizer = arms[name]
        classifier(**batcher(texts)).logsumexp(-1).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for name in arms:
        step(name)  # warm-up: first calls pick kernels
    seconds = {name: [] for name in arms}
    for _ in range(rounds):
        for name in arms:
            started = time.perf_counter()
            for _ in range(steps):
                step(name)
            seconds[name].append((time.perf_counter() - started) / steps)
    shape = list(arms["fp32"][1](texts)["input_ids"].shape)
    fp32 = statistics.median(seconds["fp32"])
    return {"task": task, "batch": shape, "threads": torch.get_num_threads(),
            "arms": {name: {"median_s_per_step": round(statistics.median(s), 4),
                            "speedup_vs_fp32": round(fp32 / statistics.median(s), 2)} for name, s in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="word_sentiment")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--tokens", default="0,32", help="comma-separated input lengths (0: the task's texts)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU has native bf16: {cpu_supports_bf16()}")
    for tokens in (int(t) for t in args.tokens.split(",")):
        print(json.dumps(measure(args.task, args.model, tokens)))


if __name__ == "__main__":
    main()
