"""Batcher.pad against tokenizer.pad on the same token ids: same tensors, time per batch.

    python -m bench.engine.padding --batch-size 256

A grouped GPU step pads one batch for all its trials; profiled on an H200, tokenizer.pad's per-row
Python took 22 ms of it (`python -m bench.engine.allocation profile`).
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer


def main(
    task: str = "cities",
    model: str = "minilm-l6",
    batch_size: Annotated[int, typer.Option(help="rows per padded batch")] = 256,
    repeats: Annotated[int, typer.Option(help="batches timed per way, alternating")] = 20,
) -> None:
    import torch

    from worker.engine.models import load_tokenizer, resolve_model
    from worker.engine.runtime import pick_runtime
    from worker.engine.tasks import get_task
    from worker.engine.training.loop import Batcher

    tokenizer = load_tokenizer(resolve_model(model))
    batcher = Batcher(tokenizer, pick_runtime(), 128)
    ids = batcher.token_ids(list(get_task(task).pool.texts[:batch_size]))
    seconds = {"tokenizer": 0.0, "batcher": 0.0}
    for _ in range(repeats):
        started = time.perf_counter()
        theirs = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        seconds["tokenizer"] += time.perf_counter() - started
        started = time.perf_counter()
        ours = batcher.pad(ids)
        seconds["batcher"] += time.perf_counter() - started
    same = all(torch.equal(ours[k].cpu(), theirs[k]) for k in ("input_ids", "attention_mask"))
    ms = {k: 1e3 * v / repeats for k, v in seconds.items()}
    print(f"{task}, batch {batch_size}: tokenizer.pad {ms['tokenizer']:.2f} ms, Batcher.pad {ms['batcher']:.2f} ms "
          f"({ms['tokenizer'] / ms['batcher']:.1f}x), same tensors: {same}")
    print(json.dumps({"task": task, "batch_size": batch_size, "ms": ms, "ratio": ms["tokenizer"] / ms["batcher"],
                      "same": same}))


if __name__ == "__main__":
    typer.run(main)
