"""Would keeping the frozen base's projection weights in bf16 speed a CPU bf16 step? Measured: no.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/frozen_bf16_weights_ab.py

Under torch.autocast on the CPU every F.linear casts its fp32 weight to bf16 on every call, and
autocast's weight cache skips frozen weights (it keeps only leaves that require grad). Arm "cast"
is the engine as it is; arm "bf16" gives each LoRA layer's base nn.Linear a bf16 copy of its weight
made once. The arithmetic is the same (the script checks logits and gradients are equal); the two
arms alternate in one process, one torch thread, word_sentiment batches of 32 (bench.engine.attention's
Arm), four repeats of five training steps and five no-grad forwards each; medians.
"""
import statistics
import time
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from peft.tuners.lora import LoraLayer

from bench.engine.attention import Arm
from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.tasks import get_task

torch.set_num_threads(1)
model = resolve_model("minilm-l6")
tokenizer = load_tokenizer(model)
pool = list(get_task("word_sentiment").pool.texts)
rng = np.random.default_rng(0)
batches = [[pool[i] for i in rng.choice(len(pool), 32, replace=False)] for _ in range(5)]
arms = {"cast": Arm("minilm-l6", "bf16", "eager", tokenizer, pool), "bf16": Arm("minilm-l6", "bf16", "eager", tokenizer, pool)}
for module in arms["bf16"].classifier.modules():
    if isinstance(module, LoraLayer) and isinstance(module.base_layer, torch.nn.Linear):
        base = module.base_layer
        base.forward = partial(F.linear, weight=base.weight.detach().to(torch.bfloat16), bias=base.bias)

logits = {name: arm.classifier(**arm.batcher(batches[0])) for name, arm in arms.items()}
print("logits equal:", torch.equal(logits["cast"], logits["bf16"]))
for value in logits.values():
    value.sum().backward()
grads = {name: [p.grad for p in arm.classifier.trainable_parameters()] for name, arm in arms.items()}
print("gradients equal:", all(torch.equal(a, b) for a, b in zip(grads["cast"], grads["bf16"])))
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
print(f"bf16 weights vs cast: step {statistics.median(step_s['cast']) / statistics.median(step_s['bf16']):.3f}x, "
      f"forward {statistics.median(forward_s['cast']) / statistics.median(forward_s['bf16']):.3f}x")
