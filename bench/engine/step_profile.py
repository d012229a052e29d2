"""Where a training step's time goes: matrix products against everything else, and how close the
products run to the device's own peak.

    OMP_NUM_THREADS=1 python -m bench.engine.step_profile --precision bf16 --batch-size 32

Profiles --steps training steps (forward, backward, AdamW) of the engine's classifier on the task's
pool texts with torch.profiler, one torch thread by default (what a worker process of a CPU host
runs), after three untimed steps, and sorts the operators' own time into matrix products (mm,
addmm, bmm, baddbmm: the arithmetic a step cannot do without) and the rest (casts, adds, softmax,
GELU, LayerNorm, the optimizer: passes over the activations). The products' rate is their counted FLOPs
over their time; the peak is bench.engine.mfu's, one large square product in the same dtype. When
the products already run near that peak, a faster step has to come from the rest, or from doing
less arithmetic.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def profile_steps(task: str, model: str, precision: str, batch_size: int, steps: int, threads: int = 1) -> dict:
    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, profile

    from bench.engine.attention import Arm
    from bench.engine.mfu import matmul_flops
    from worker.engine.models import load_tokenizer, resolve_model
    from worker.engine.precision import Precision
    from worker.engine.runtime import Runtime
    from worker.engine.tasks import get_task

    torch.set_num_threads(threads)
    resolved = resolve_model(model)
    pool = list(get_task(task).pool.texts)
    rng = np.random.default_rng(0)
    batches = [[pool[i] for i in rng.choice(len(pool), batch_size, replace=False)] for _ in range(steps)]
    # The attention kernel a trial of this precision loads (Runtime.attention; None: the library's SDPA).
    attention = Runtime(torch.device("cpu"), torch.float32, Precision(precision)).attention or "sdpa"
    arm = Arm(model, precision, attention, load_tokenizer(resolved), pool)
    for batch in batches[:3]:  # allocator, kernels, autocast's first casts
        arm.step(batch)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for batch in batches:
            arm.step(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    products = [e for e in events if e.key in PRODUCTS]
    product_us = sum(e.self_cpu_time_total for e in products)
    product_flops = sum(e.flops for e in products)
    rest = sorted((e for e in events if e.key not in PRODUCTS), key=lambda e: e.self_cpu_time_total, reverse=True)
    peak = matmul_flops(arm.runtime)
    return {
        "task": task, "model": model, "precision": precision, "batch_size": batch_size, "steps": steps,
        "threads": torch.get_num_threads(),
        "step_s": total / 1e6 / steps,
        "product_share": product_us / total,
        "product_tflops": product_flops / (product_us / 1e6) / 1e12,
        "peak_tflops": peak / 1e12,
        "products": {e.key: {"ms_per_step": e.self_cpu_time_total / 1e3 / steps, "calls_per_step": e.count / steps}
                     for e in products},
        "rest_top": [{"op": e.key, "ms_per_step": e.self_cpu_time_total / 1e3 / steps,
                      "calls_per_step": e.count / steps} for e in rest[:12]],
    }


def main(
    task: str = "word_sentiment",
    model: str = "minilm-l6",
    precision: Annotated[str, typer.Option(help="bf16 (autocast on a CPU) or fp32")] = "bf16",
    batch_size: int = 32,
    steps: Annotated[int, typer.Option(help="profiled training steps")] = 10,
    threads: Annotated[int, typer.Option(help="torch threads (a worker process of a CPU host: 1)")] = 1,
) -> None:
    r = profile_steps(task, model, precision, batch_size, steps, threads)
    print(f"{r['task']} / {r['model']}, {r['precision']}, batch {r['batch_size']}, {r['threads']} thread(s), "
          f"{r['steps']} steps: {r['step_s'] * 1e3:.0f} ms a step (under the profiler)")
    print(f"  matrix products: {r['product_share']:.0%} of the step, at {r['product_tflops']:.3f} TFLOP/s "
          f"({r['product_tflops'] / r['peak_tflops']:.0%} of a large square product's "
          f"{r['peak_tflops']:.3f})")
    for op, row in r["products"].items():
        print(f"    {op:16} {row['ms_per_step']:7.1f} ms a step, {row['calls_per_step']:.0f} calls")
    print("  the rest, largest first:")
    for row in r["rest_top"]:
        print(f"    {row['op']:40} {row['ms_per_step']:7.1f} ms a step, {row['calls_per_step']:.0f} calls")
    print(json.dumps(r))  # one line, for scripts


if __name__ == "__main__":
    typer.run(main)
