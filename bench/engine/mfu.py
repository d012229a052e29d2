"""Model-FLOPs utilisation of one trial's training stage: how much of the chip the engine uses.

    python -m bench.engine.mfu --steps 50 --batch-sizes 32,256 [--precision bf16]

Trains a seq_sft stage (the engine's classifier, Batcher and train_stage, in --precision: a GPU's
bf16 base, or a CPU's bf16 autocast over fp32 weights) on the task's pool texts for --steps steps
per batch size and reports tokens/s and

    MFU = tokens/s x FLOPs per token / peak FLOPs/s.

FLOPs per trained token, LoRA on a frozen base: 2·N forward + 2·N backward through the
activations = 4·N, where N is the backbone's non-embedding parameters (an embedding lookup is no
matmul; the pooler is unused by mean pooling). The frozen base gets no weight gradients, which
full fine-tuning's usual 6·N counts. Left out, as small here: attention scores (per token
4·layers·seq·hidden, under 5% of 2·N for MiniLM at a few dozen tokens), the rank-8 adapters
and the head. Tokens are the real (unpadded) ones: padding is work the chip does but nobody needs,
so `mfu_padded` (every padded position counted) is reported beside it.

Tokenizing is done before the clock starts (the Batcher keeps token ids per text) and one short
stage warms the kernels first, so the figure is the training step's, not start-up's. The peak is
the dense bf16 figure of the device (PEAK_BF16, by name) or --peak-tflops. A CPU has no data-sheet
figure to look up, so there (and on a GPU not in the table) the peak is measured: the best rate of
one large square product in the runtime's dtype (`matmul_flops`), what this device's BLAS reaches
when nothing but arithmetic is asked of it. MFU against it says how much faster any batching,
grouping or kernel change could make a step that does the same arithmetic: on this project's
2-core CPU, little (docs/benchmarks.md, throughput).
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, FLOP/s. Longest name first
# when matching, so "H100 PCIe" beats "H100" and "L40S" beats "L4".
PEAK_BF16 = {
    "H100 PCIe": 756e12,
    "H100": 989.5e12,
    "H200": 989.5e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
}


def peak_flops(device_name: str) -> float | None:
    for name in sorted(PEAK_BF16, key=len, reverse=True):
        if name.lower() in device_name.lower():
            return PEAK_BF16[name]
    return None


# Square product whose rate stands in for a peak where no data sheet gives one: large enough that
# the BLAS runs at its best (tens of ms a product on two CPU cores), small enough to time in seconds.
MATMUL_SIZE = 2048
MATMUL_REPEATS = 5


def arithmetic_dtype(runtime):
    """The dtype a runtime's products run in: bf16 under a CPU's autocast (its weights stay fp32),
    otherwise its weights' own."""
    return runtime.autocast_dtype or runtime.dtype


def matmul_flops(runtime, size: int = MATMUL_SIZE, repeats: int = MATMUL_REPEATS) -> float:
    """FLOP/s of the best of `repeats` (size x size) @ (size x size) products on the runtime's device
    in the dtype its products run in (a CPU's bf16 autocast: bf16, though its weights are fp32),
    after one untimed product (threads, allocator and kernels warm)."""
    import torch

    dtype = arithmetic_dtype(runtime)
    a = torch.randn(size, size, device=runtime.device).to(dtype)
    b = torch.randn(size, size, device=runtime.device).to(dtype)
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)
    best = float("inf")
    with torch.inference_mode():
        for i in range(repeats + 1):
            sync()
            started = time.perf_counter()
            torch.mm(a, b)
            sync()
            if i:
                best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best


def non_embedding_params(backbone) -> int:
    """Frozen base parameters a token's forward multiplies by: all but embeddings, pooler and adapters.

    A BERT's `embeddings` module (its LayerNorm included) and its pooler are skipped whole; a
    decoder's token embeddings are the nn.Embedding modules.
    """
    from torch import nn

    skip = set()
    for name, module in backbone.named_modules():
        if isinstance(module, nn.Embedding) or name.split(".")[-1] in ("embeddings", "pooler"):
            skip.update(id(p) for p in module.parameters())
    return sum(p.numel() for n, p in backbone.named_parameters() if id(p) not in skip and "lora_" not in n)


def train_flops_per_token(n_base: int) -> float:
    """4·N: forward 2·N, backward through the activations 2·N, no weight gradients for the base."""
    return 4.0 * n_base


def _measure(task: str, model: str, batch_size: int, steps: int, peak: float, precision: str, seed: int = 0) -> dict:
    import numpy as np
    import torch

    from worker.engine.models import load_tokenizer, resolve_model
    from worker.engine.runtime import pick_runtime, seed_everything
    from worker.engine.spec import recipe_params
    from worker.engine.tasks import get_task
    from worker.engine.training.classifier import build_classifier
    from worker.engine.training.loop import Batcher, StageData, input_limit, train_stage

    class CountingBatcher(Batcher):
        """Counts the tokens it hands to training; kept on the device, so counting never syncs."""

        def __call__(self, texts):
            batch = super().__call__(texts)
            if self.counting:
                self.tokens += batch["attention_mask"].sum()
                self.padded += batch["attention_mask"].numel()
            return batch

    seed_everything(seed)
    runtime, resolved = pick_runtime(precision), resolve_model(model)
    classifier = build_classifier(resolved, runtime)
    pool = get_task(task).pool
    # Exactly `steps` batches (epochs repeat when the pool is smaller), no validation: a
    # fixed-schedule stage that runs them all.
    n = min(steps * batch_size, len(pool))
    rows = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    texts, targets = [pool.texts[i] for i in rows], pool.labels[rows].astype(np.float32)
    params = recipe_params("fast", {"batch_size": batch_size, "max_steps_per_stage": steps,
                                    "max_examples_per_stage": steps * batch_size})
    limit = input_limit(params, classifier.backbone.config)
    batcher = CountingBatcher(load_tokenizer(resolved), runtime, limit)
    batcher.counting, batcher.padded = False, 0
    batcher.tokens = torch.zeros((), dtype=torch.long, device=runtime.device)
    batcher(texts)  # tokenize every text once, before the clock
    data = StageData(texts, targets, [], np.zeros(0, dtype=np.int64))
    rng = np.random.default_rng(seed)
    warm = params.model_copy(update={"max_steps_per_stage": 3})
    train_stage("warmup", classifier, batcher, data, warm, rng)  # kernels, allocator, cuBLAS handles
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)
    sync()
    batcher.counting = True
    started = time.perf_counter()
    stage = train_stage("weak", classifier, batcher, data, params, rng)
    sync()
    wall_s = time.perf_counter() - started
    tokens, n_base = int(batcher.tokens.item()), non_embedding_params(classifier.backbone.base_model.model)
    achieved = tokens / wall_s * train_flops_per_token(n_base)
    padded = batcher.padded / wall_s * train_flops_per_token(n_base)
    return {
        "batch_size": batch_size, "steps": stage.steps, "wall_s": wall_s, "tokens": tokens,
        "padded_tokens": batcher.padded, "real_token_share": tokens / batcher.padded,
        "tokens_per_s": tokens / wall_s, "examples_per_s": stage.examples / wall_s,
        "achieved_tflops": achieved / 1e12, "mfu": achieved / peak, "mfu_padded": padded / peak,
        "n_base_params": n_base, "device": runtime.label,
        "dtype": str(arithmetic_dtype(runtime)).removeprefix("torch."),
    }


def mfu(task: str = "cities", model: str = "minilm-l6", batch_sizes: tuple[int, ...] = (32,), steps: int = 50,
        peak_tflops: float | None = None, precision: str = "fp32") -> dict:
    import torch

    from worker.engine.runtime import pick_runtime

    runtime = pick_runtime(precision)  # sets the threads a trial would run on, which the product then uses
    peak = source = None
    if peak_tflops is not None:
        peak, source = peak_tflops * 1e12, "--peak-tflops"
    elif runtime.device.type == "cuda":
        peak, source = peak_flops(torch.cuda.get_device_name(runtime.device)), "PEAK_BF16"
    if peak is None:
        peak = matmul_flops(runtime)
        dtype = str(arithmetic_dtype(runtime)).removeprefix("torch.")
        source = (f"measured: best of {MATMUL_REPEATS} torch.mm {MATMUL_SIZE}x{MATMUL_SIZE} in {dtype}, "
                  f"{torch.get_num_threads()} threads")
    runs = [_measure(task, model, b, steps, peak, precision) for b in batch_sizes]
    first = runs[0]
    return {
        "task": task, "model": model, "device": first["device"], "dtype": first["dtype"],
        "n_base_params": first["n_base_params"],
        "flops_per_token": train_flops_per_token(first["n_base_params"]),
        "peak_flops": peak, "peak_source": source,
        "runs": [{k: v for k, v in r.items() if k not in ("device", "dtype", "n_base_params")} for r in runs],
    }


def main(
    task: str = "cities",
    model: str = "minilm-l6",
    batch_sizes: Annotated[str, typer.Option(help="comma-separated, one stage each")] = "32",
    steps: Annotated[int, typer.Option(help="timed optimizer steps per batch size")] = 50,
    peak_tflops: Annotated[float | None, typer.Option(help="peak TFLOP/s, instead of the table's")] = None,
    precision: Annotated[str, typer.Option(help="fp32, or bf16 (a CPU: autocast, its peak measured in bf16)")] = "fp32",
) -> None:
    result = mfu(task, model, tuple(int(b) for b in batch_sizes.split(",")), steps, peak_tflops, precision)
    print(f"{result['task']} / {result['model']} on {result['device']} ({result['dtype']}), "
          f"{result['n_base_params']:,} non-embedding base parameters, "
          f"{result['flops_per_token'] / 1e6:.1f} MFLOP/token")
    print(f"  peak {result['peak_flops'] / 1e12:.3f} TFLOP/s ({result['peak_source']})")
    for r in result["runs"]:
        mfu_text = f"{r['mfu']:.2%} (padded {r['mfu_padded']:.2%})"
        print(f"  batch {r['batch_size']:5}: {r['steps']} steps in {r['wall_s']:.2f} s, "
              f"{r['tokens_per_s']:,.0f} tokens/s, "
              f"{r['examples_per_s']:,.0f} examples/s, {r['achieved_tflops']:.3f} TFLOP/s, MFU {mfu_text}")
    print(json.dumps(result))  # one line, for scripts


if __name__ == "__main__":
    typer.run(main)
