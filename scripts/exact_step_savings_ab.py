"""The engine's exact step savings, each taken away again, side by side: what each one buys.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/exact_step_savings_ab.py [--precision bf16] [--batch-size 32]

Two savings change no value (worker/engine/training/frozen_cast.py and lean_lora.py): the frozen
base's projections cast to bf16 once rather than by autocast on every call, and peft's LoRA forward
less its identities (a multiply by a scaling of 1, a bf16 -> fp32 -> bf16 round trip of the input
under autocast). Arm "engine" is the engine as it is; "no frozen cast" and "peft forward" each take
one saving away; "before" takes both. The script first checks that every arm gives the same logits
and gradients bit for bit, then alternates the arms in one process, one torch thread, on
word_sentiment batches (bench.engine.attention's Arm), four repeats of five training steps and five
no-grad forwards each; medians, and each arm's speed against "before".
"""
import argparse
import statistics
import time

import numpy as np
import torch

from bench.engine.attention import Arm
from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.tasks import get_task
from worker.engine.training.frozen_cast import uncast_frozen_projections
from worker.engine.training.lean_lora import peft_lora_forwards

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
parser.add_argument("--batch-size", type=int, default=32)
args = parser.parse_args()
torch.set_num_threads(1)
model = resolve_model("minilm-l6")
tokenizer = load_tokenizer(model)
pool = list(get_task("word_sentiment").pool.texts)
rng = np.random.default_rng(0)
batches = [[pool[i] for i in rng.choice(len(pool), args.batch_size, replace=False)] for _ in range(5)]
attention = "eager" if args.precision == "bf16" else "sdpa"  # what Runtime.attention picks on a CPU
arms = {name: Arm("minilm-l6", args.precision, attention, tokenizer, pool)
        for name in ("engine", "no frozen cast", "peft forward", "before")}
for name in ("no frozen cast", "before"):
    uncast_frozen_projections(arms[name].classifier)
for name in ("peft forward", "before"):
    peft_lora_forwards(arms[name].classifier)

logits = {name: arm.classifier(**arm.batcher(batches[0])) for name, arm in arms.items()}
for value in logits.values():
    value.sum().backward()
grads = {name: [p.grad for p in arm.classifier.trainable_parameters()] for name, arm in arms.items()}
for name in arms:
    same = torch.equal(logits[name], logits["before"]) and all(
        torch.equal(a, b) for a, b in zip(grads[name], grads["before"]))
    print(f"{name}: logits and gradients equal to 'before': {same}")
for arm in arms.values():
    arm.optimizer.zero_grad(set_to_none=True)

step_s = {name: [] for name in arms}
forward_s = {name: [] for name in arms}
for _ in range(4):
    for name, arm in arms.items():
        started = time.perf_counter()
        for batch in batches:
            arm.step(batch)
        step_s[name].append((time.perf_counter() - started) / len(batches))
        with torch.no_grad():
            started = time.perf_counter()
            for batch in batches:
                arm.classifier(**arm.batcher(batch))
            forward_s[name].append((time.perf_counter() - started) / len(batches))
before_step, before_forward = statistics.median(step_s["before"]), statistics.median(forward_s["before"])
print(f"{args.precision}, batch {args.batch_size}, one thread:")
for name in arms:
    step, forward = statistics.median(step_s[name]), statistics.median(forward_s[name])
    print(f"  {name:15s} step {step:.4f} s ({before_step / step:.2f}x), no-grad forward {forward:.4f} s "
          f"({before_forward / forward:.2f}x)")
