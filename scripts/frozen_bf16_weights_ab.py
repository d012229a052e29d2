"""Casting the frozen base's projections to bf16 once against casting them on every call, side by side.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/frozen_bf16_weights_ab.py

Under torch.autocast on the CPU every F.linear casts its fp32 weight to bf16 on every call, and
autocast's weight cache skips frozen weights (it keeps only leaves that require grad). Arm "once" is
the engine as it is (worker/engine/training/frozen_cast.py: a bf16 copy made when the classifier is
built); arm "per call" takes those copies away again, as the engine was before. The arithmetic is
the same (the script checks logits and gradients are equal); the two arms alternate in one process,
one torch thread, word_sentiment batches of 32 (bench.engine.attention's Arm), four repeats of five
training steps and five no-grad forwards each; medians. Measured: 1.00-1.02x a step on an
AVX512-BF16 EPYC (no AMX), 1.06x a step and 1.12x a forward on an AMX Xeon.
"""
import statistics
import time

import numpy as np
import torch

from bench.engine.attention import Arm
from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.tasks import get_task
from worker.engine.training.frozen_cast import uncast_frozen_projections

torch.set_num_threads(1)
model = resolve_model("minilm-l6")
tokenizer = load_tokenizer(model)
pool = list(get_task("word_sentiment").pool.texts)
rng = np.random.default_rng(0)
batches = [[pool[i] for i in rng.choice(len(pool), 32, replace=False)] for _ in range(5)]
arms = {"per call": Arm("minilm-l6", "bf16", "eager", tokenizer, pool), "once": Arm("minilm-l6", "bf16", "eager", tokenizer, pool)}
uncast_frozen_projections(arms["per call"].classifier)

logits = {name: arm.classifier(**arm.batcher(batches[0])) for name, arm in arms.items()}
print("logits equal:", torch.equal(logits["per call"], logits["once"]))
for value in logits.values():
    value.sum().backward()
grads = {name: [p.grad for p in arm.classifier.trainable_parameters()] for name, arm in arms.items()}
print("gradients equal:", all(torch.equal(a, b) for a, b in zip(grads["per call"], grads["once"])))
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
for name in arms:
    print(f"{name}: step {statistics.median(step_s[name]):.4f} s, no-grad forward {statistics.median(forward_s[name]):.4f} s")
print(f"cast once vs per call: step {statistics.median(step_s['per call']) / statistics.median(step_s['once']):.3f}x, "
      f"forward {statistics.median(forward_s['per call']) / statistics.median(forward_s['once']):.3f}x")
