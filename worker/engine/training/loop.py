"""One training stage: AdamW with warmup and cosine decay, early stopping on validation AUROC."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import auroc
from ..runtime import Runtime
from ..spec import MethodParams, ProgressEvent, StageResult
from .classifier import SequenceClassifier
from .early_stopping import EarlyStopping
from .losses import logconf_loss, logconf_weight, soft_cross_entropy, soft_targets

# Turns a raw text into the model's input (e.g. adds a freshly shuffled few-shot prefix).
Formatter = Callable[[str], str]
ProgressCallback = Callable[[ProgressEvent], None]


def identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class StageData:
    train_texts: Sequence[str]
    train_targets: np.ndarray  # probability of the positive class: 0/1 for gold, soft for weak
    val_texts: Sequence[str]
    val_labels: np.ndarray  # hard labels to score validation AUROC against


@dataclass(frozen=True)
class Schedule:
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    eval_every: int

    @staticmethod
    def for_stage(n_train: int, params: MethodParams) -> "Schedule":
        steps_per_epoch = math.ceil(n_train / params.batch_size)
        epochs = max(params.max_examples_per_stage / n_train, 1.0)
        total = math.ceil(epochs * steps_per_epoch)
        if params.max_steps_per_stage is not None:
            total = min(total, params.max_steps_per_stage)
        return Schedule(
            steps_per_epoch=steps_per_epoch,
            total_steps=total,
            warmup_steps=max(min(params.warmup_steps, steps_per_epoch), 2),
            eval_every=min(params.eval_every, steps_per_epoch),
        )


class Batcher:
    """Tokenizes formatted texts into padded tensors on the run's device.

    Without a formatter each text always becomes the same tokens, so they are tokenized once and
    reused across epochs and evaluations; a formatter (fresh few-shot prefixes) needs it per call.
    """

    def __init__(self, tokenizer, runtime: Runtime, max_length: int, formatter: Formatter = identity):
        self.tokenizer = tokenizer
        self.runtime = runtime
        self.max_length = max_length
        self.formatter = formatter
        self._token_ids: dict[str, list[int]] | None = {} if formatter is identity else None

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer([self.formatter(t) for t in texts], truncation=True, max_length=self.max_length)
        return encoded["input_ids"]

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        if self._token_ids is None:
            ids = self._encode(texts)
        else:
            missing = [t for t in dict.fromkeys(texts) if t not in self._token_ids]
            if missing:
                self._token_ids.update(zip(missing, self._encode(missing)))
            ids = [self._token_ids[t] for t in texts]
        padded = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        return {
            "input_ids": padded["input_ids"].to(self.runtime.device),
            "attention_mask": padded["attention_mask"].to(self.runtime.device),
        }


@torch.inference_mode()
def predict_probs(
    classifier: SequenceClassifier, batcher: Batcher, texts: Sequence[str], batch_size: int
) -> np.ndarray:
    """Probability of the positive class for each text."""
    was_training = classifier.training
    classifier.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        logits = classifier(**batcher(texts[start : start + batch_size]))
        out.append(torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy())
    classifier.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def train_stage(
    name: str,
    classifier: SequenceClassifier,
    batcher: Batcher,
    data: StageData,
    params: MethodParams,
    rng: np.random.Generator,
    use_logconf: bool = False,
    progress: ProgressCallback | None = None,
) -> StageResult:
    """Train adapter and head on one stage's labels; leaves the classifier in its best state."""
    started = time.perf_counter()
    from transformers import get_cosine_schedule_with_warmup

    n_train = len(data.train_texts)
    schedule = Schedule.for_stage(n_train, params)
    trainable = [p for p in classifier.parameters() if p.requires_grad]
    # A fresh optimizer per stage; the adapter and head carry over from the previous stage.
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, betas=(0.9, 0.95), weight_decay=0.01, fused=True)
    scheduler = get_cosine_schedule_with_warmup(optimizer, schedule.warmup_steps, schedule.total_steps)
    stopper = EarlyStopping(patience=params.patience, min_delta=params.min_delta)
    best_state = classifier.trainable_state()
    targets = soft_targets(torch.as_tensor(data.train_targets))

    def evaluate(step: int) -> float | None:
        nonlocal best_state
        score = auroc(data.val_labels, predict_probs(classifier, batcher, data.val_texts, params.eval_batch_size))
        if stopper.update(score, step):
            best_state = classifier.trainable_state()  # kept in memory: adapters are small
        if progress:
            progress(ProgressEvent(stage=name, step=step, total_steps=schedule.total_steps, val_auroc=score))
        return score

    classifier.train()
    step, examples, order = 0, 0, np.empty(0, dtype=np.int64)
    while step < schedule.total_steps and not stopper.should_stop:
        if len(order) == 0:
            order = rng.permutation(n_train)
        batch, order = order[: params.batch_size], order[params.batch_size :]
        logits = classifier(**batcher([data.train_texts[i] for i in batch]))
        batch_targets = targets[batch].to(logits.device)
        if use_logconf:
            weight = logconf_weight(step / schedule.total_steps, params.logconf_aux_weight, params.logconf_warmup_frac)
            loss = logconf_loss(logits, batch_targets, weight)
        else:
            loss = soft_cross_entropy(logits, batch_targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        examples += len(batch)
        if step % schedule.eval_every == 0 or step == schedule.total_steps:
            evaluate(step)
        elif progress:
            progress(ProgressEvent(stage=name, step=step, total_steps=schedule.total_steps))

    classifier.load_trainable_state(best_state)
    return StageResult(
        name=name,
        n_train=n_train,
        n_val=len(data.val_texts),
        steps=step,
        examples=examples,
        best_val_auroc=None if math.isinf(stopper.best_score) else stopper.best_score,
        best_step=stopper.best_step,
        stopped_early=stopper.should_stop and step < schedule.total_steps,
        wall_s=time.perf_counter() - started,
    )
