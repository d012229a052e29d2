"""Many trials on one base: their stages train together, one forward over the frozen base per step.

`run_trials` is the worker's entry point for a batch of trials. Trials of the sequential methods
on the same model and task are cut into groups of `trial_group_size`; each group's trials run their
own method code (methods.sequential.sequential_steps) and, whenever several of them are training,
their batches go through one forward, each row through its own trial's adapter and head
(training.multi_lora). A trial whose stage ends early starts its next stage (or is scored) while the
others go on. Each trial keeps its own draw, batch order, optimizer, schedule, early stopping and
evaluation, so a grouped trial matches the same trial run alone up to float rounding (the batch is
padded to the longest row of any trial: tests/engine/test_resident_and_reuse.py).

On the CPU a row costs no less in a bigger batch (`python -m bench.engine.mfu --batch-sizes
32,128,256`: 71, 57 and 58 examples/s for MiniLM-L6), so the group size defaults to 1 there; on a
GPU, a small model's batch of 32 leaves most of the device idle, and a group fills it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import groupby

import torch

from .methods.context import TrialContext
from .methods.sequential import MethodSteps, sequential_steps
from .resident import resident_models
from .runtime import Runtime, pick_runtime
from .settings import engine_settings
from .spec import Method, TrialResult, TrialSpec
from .tasks import Task, get_task
from .training.classifier import build_classifier, pooling_for
from .training.loop import ProgressCallback, StageRun
from .training.multi_lora import MemberView, MultiLoRAClassifier
from .trial import prepare_trial, run_trial, trial_result
from .weak_stages import weak_prefix

GROUPABLE = frozenset({Method.seq_sft, Method.logconf_sft, Method.uncertainty_sft, Method.prompted_sft})
CUDA_GROUP_SIZE = 8


def group_size(runtime: Runtime) -> int:
    wanted = engine_settings().trial_group_size
    if wanted:
        return wanted
    return CUDA_GROUP_SIZE if runtime.device.type == "cuda" else 1


def run_trials(
    specs: list[TrialSpec], tasks: dict[str, Task] | None = None, progress: ProgressCallback | None = None
) -> list[TrialResult]:
    """Run every spec, grouping what can share a base; results in the order of `specs`.

    `tasks` maps task names to built tasks (uploaded tasks come from the database); others are
    built by name. An error in one trial of a group fails the group: the caller retries them alone.
    """
    size = group_size(pick_runtime())
    results: list[TrialResult | None] = [None] * len(specs)
    tasks = tasks or {}

    def shares_base(i: int) -> tuple:
        return (specs[i].task, specs[i].model, specs[i].params.precision)

    alone = [i for i, s in enumerate(specs) if size == 1 or s.method not in GROUPABLE]
    grouped = sorted((i for i in range(len(specs)) if i not in alone), key=shares_base)
    for i in alone:
        results[i] = run_trial(specs[i], progress, tasks.get(specs[i].task))
    for _, same_base in groupby(grouped, key=shares_base):
        same_base = list(same_base)
        for chunk in chunks_apart(same_base, [weak_prefix(specs[i]) for i in same_base], size):
            for i, result in zip(chunk, run_group([specs[i] for i in chunk], tasks.get(specs[chunk[0]].task), progress)):
                results[i] = result
    return results  # type: ignore[return-value]


def chunks_apart(items: list, prefixes: list, size: int) -> list[list]:
    """`items` in chunks of at most `size`, in order, so that a shared prefix trains in one chunk only.

    Trials of one group train side by side, so two that share a weak stage would both train it. The
    first of a prefix (its leader) goes in the first chunk with room; the others go in that chunk's
    successors, where they reuse what the leader stored. A deferred item takes the next chunk with
    room, so chunks stay full. Leaders of a shared prefix go first, so their followers can fill the
    next chunk instead of trailing in a small last one.
    """
    shared = {p for p in prefixes if p is not None and prefixes.count(p) > 1}
    first = [i for i, p in enumerate(prefixes) if p in shared and prefixes.index(p) == i]
    order = first + [i for i in range(len(items)) if i not in set(first)]
    pending = [(items[i], prefixes[i]) for i in order]
    chunks: list[list] = []
    led_earlier: set = set()  # prefixes whose leader is in an earlier chunk
    while pending:
        chunk, led_here, rest = [], set(), []
        for item, prefix in pending:
            if len(chunk) < size and (prefix is None or prefix in led_earlier or prefix not in led_here):
                chunk.append(item)
                if prefix is not None and prefix not in led_earlier:
                    led_here.add(prefix)
            else:
                rest.append((item, prefix))
        chunks.append(chunk)
        led_earlier |= led_here
        pending = rest
    return chunks


def run_group(
    specs: list[TrialSpec],
    task: Task | None = None,
    progress: ProgressCallback | Sequence[ProgressCallback | None] | None = None,
) -> list[TrialResult]:
    """Train trials of one task and model together; a group of one is simply run_trial.

    `progress`: one callback for every trial, or one per spec (each hears its own trial).
    """
    each = list(progress) if isinstance(progress, Sequence) else [progress] * len(specs)
    # One base runs one arithmetic: trials asking for different precisions train apart. The grouped
    # heads are 2-way: a task of more classes trains each trial alone.
    if (len(specs) == 1 or any(s.method not in GROUPABLE for s in specs) or len({s.params.precision for s in specs}) > 1
            or (task or get_task(specs[0].task)).n_classes > 2):
        return [run_trial(s, p, task) for s, p in zip(specs, each)]
    started = time.perf_counter()
    contexts: list[TrialContext] = []
    initial: list[dict[str, torch.Tensor]] = []
    first = prepare_trial(specs[0], each[0], task)
    model, runtime = first.model, first.runtime
    with resident_models.borrow(model, runtime) as loaded:
        for spec, heard_by in zip(specs, each):
            # Each trial's adapter and head start where they would alone: seeded, then drawn by peft.
            ctx = first if not contexts else prepare_trial(spec, heard_by, task)
            contexts.append(ctx)
            classifier = build_classifier(model, runtime, backbone=loaded.model)
            initial.append(classifier.trainable_state())
            classifier.backbone.unload()
        group = MultiLoRAClassifier(loaded.model, loaded.model.config.hidden_size, pooling_for(model), len(specs),
                                    autocast_dtype=runtime.autocast_dtype)
        try:
            views = [MemberView(group, m) for m in range(len(specs))]
            for view, state in zip(views, initial):
                view.load_trainable_state(state)
            steps = [sequential_steps(ctx, view, loaded.tokenizer) for ctx, view in zip(contexts, views)]
            outcomes = train_together(group, views, steps)
        finally:
            group.detach()
    # Time is shared: each trial is charged the group's wall time over its size.
    share = (time.perf_counter() - started) / len(specs)
    return [trial_result(ctx, outcome, share) for ctx, outcome in zip(contexts, outcomes)]


def train_together(group: MultiLoRAClassifier, views: list[MemberView], steps: list[MethodSteps]) -> list:
    """Drive each trial's method steps; every step, one forward and backward for all stages in training."""
    outcomes: list = [None] * len(steps)
    active: dict[int, StageRun] = {}

    def advance(m: int, result=None, first: bool = False) -> None:
        # Run trial m's method code up to its next stage (or its end), starting that stage.
        while True:
            try:
                request = next(steps[m]) if first else steps[m].send(result)
            except StopIteration as finished:
                outcomes[m] = finished.value
                return
            run = request.start(views[m])
            if not run.done:
                active[m] = run
                return
            result, first = run.finish(), False

    for m in range(len(steps)):
        advance(m, first=True)
    while active:
        _joint_step(group, active)
        for m in [m for m, run in active.items() if run.done]:
            advance(m, active.pop(m).finish())
    return outcomes


def _joint_step(group: MultiLoRAClassifier, active: dict[int, StageRun]) -> None:
    ids, segments, targets = [], [], []
    for m, run in active.items():
        texts, batch_targets = run.next_batch()
        member_ids = run.batcher.token_ids(texts)
        segments.append((m, len(ids), len(ids) + len(member_ids)))
        ids.extend(member_ids)
        targets.append(batch_targets)
    batcher = next(iter(active.values())).batcher  # one tokenizer for the group: any batcher pads
    group.train()
    logits = group(**batcher.pad(ids), segments=segments)
    loss = sum(run.loss(logits[start:stop], t) for run, (_, start, stop), t in zip(active.values(), segments, targets))
    loss.backward()
    for run, (_, start, stop) in zip(list(active.values()), segments):
        run.after_backward(stop - start)

