"""One training stage: AdamW with warmup and cosine decay, early stopping on validation AUROC.

Two rules, chosen by how many labels the stage could validate on (budget.stage_split):
- early stopping (the paper's): evaluate every `eval_every` steps, stop after `patience`
  evaluations without a gain of `min_delta` AUROC, restore the best state. With `keep_stage_start`
  the state before the first step is a candidate too, so a stage that cannot beat what the
  previous stage left declines instead of making it worse.
- fixed schedule: a stage whose validation share would be under `min_val_labels` trains on all
  its labels for the whole schedule (max_examples_per_stage, at least one epoch). Picking the best
  of many evaluations on 2-12 labels mostly picks noise (measured: gold stages restored step 1-4
  and barely trained); a fixed schedule uses every label it paid for. It must be the whole
  schedule: 64 gold labels on word_sentiment scored 0.59 after 32 steps and 0.82 after 64.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import auroc
from ..runtime import Runtime
from ..spec import MethodParams, ProgressEvent, StageResult, StageRule
from .classifier import SequenceClassifier
from .early_stopping import EarlyStopping
from .losses import logconf_loss, logconf_weight, soft_cross_entropy, soft_targets

# A stage with no validation to stop it sees each label at most this often: 512 steps on 4 gold
# labels drove the head's logits so far that every test probability rounded to 1.0 (one class).
MAX_UNVALIDATED_EPOCHS = 64

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

    planned_steps: int = 0  # before max_steps_per_stage; 0 when the same as total_steps

    @staticmethod
    def for_stage(n_train: int, params: MethodParams, validated: bool = True) -> "Schedule":
        steps_per_epoch = math.ceil(n_train / params.batch_size)
        epochs = max(params.max_examples_per_stage / n_train, 1.0)
        if not validated:
            epochs = min(epochs, MAX_UNVALIDATED_EPOCHS)
        planned = math.ceil(epochs * steps_per_epoch)
        total = planned if params.max_steps_per_stage is None else min(planned, params.max_steps_per_stage)
        return Schedule(
            steps_per_epoch=steps_per_epoch,
            total_steps=total,
            warmup_steps=max(min(params.warmup_steps, steps_per_epoch), 2),
            eval_every=min(params.eval_every, steps_per_epoch),
            planned_steps=planned if planned != total else 0,
        )


class Batcher:
    """Tokenizes formatted texts into padded tensors on the run's device.

    Without a formatter each text always becomes the same tokens, so they are tokenized once and
    reused across epochs and evaluations; a formatter (fresh few-shot prefixes) needs it per call.
    Inputs longer than `max_length` are cut (from the left: the question stays) and counted, so a
    result can say what a recipe truncated.
    """

    def __init__(self, tokenizer, runtime: Runtime, max_length: int, formatter: Formatter = identity):
        self.tokenizer = tokenizer
        self.runtime = runtime
        self.max_length = max_length
        self.formatter = formatter
        self._token_ids: dict[str, list[int]] | None = {} if formatter is identity else None
        self.truncated = 0  # encodings cut so far
        self.longest = 0  # tokens in the longest encoding so far, before any cut

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        formatted = [self.formatter(t) for t in texts]
        ids = self.tokenizer(formatted, verbose=False)["input_ids"]
        too_long = [i for i, tokens in enumerate(ids) if len(tokens) > self.max_length]
        self.longest = max([self.longest, *map(len, ids)])
        if too_long:
            self.truncated += len(too_long)
            cut = self.tokenizer([formatted[i] for i in too_long], truncation=True, max_length=self.max_length)
            for i, tokens in zip(too_long, cut["input_ids"]):
                ids[i] = tokens
        return ids

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
def predict_scores(
    classifier: SequenceClassifier, batcher: Batcher, texts: Sequence[str], batch_size: int
) -> np.ndarray:
    """Log-odds of the positive class for each text, in the order given (float64: they keep their
    order where a float32 probability has rounded to 0 or 1).

    Batches are formed from texts sorted by length, so each pads to a length near its own texts'
    rather than to the longest text that happened to arrive with them; the scores come back in
    the caller's order. `python -m worker.bench.evaluation`: 1.11x on cities and 1.07x on
    word_sentiment test sets (short texts of similar length: the gain grows with their spread).
    """
    was_training = classifier.training
    classifier.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    scores = np.zeros(len(texts), dtype=np.float64)
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        logits = classifier(**batcher([texts[i] for i in rows])).double()
        scores[rows] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
    classifier.train(was_training)
    return scores


def predict_probs(
    classifier: SequenceClassifier, batcher: Batcher, texts: Sequence[str], batch_size: int
) -> np.ndarray:
    """Probability of the positive class for each text."""
    return 1.0 / (1.0 + np.exp(-predict_scores(classifier, batcher, texts, batch_size)))


def model_positions(model_config) -> int:
    """The longest input the model's position embeddings allow."""
    return getattr(model_config, "max_position_embeddings", None) or 512


def input_limit(params: MethodParams, model_config) -> int:
    """The recipe's max_length, or (None) the longest input the model's positions allow."""
    positions = model_positions(model_config)
    return min(params.max_length or positions, positions)


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
    """Train adapter and head on one stage's labels; leaves the classifier in the state it keeps."""
    started = time.perf_counter()
    from transformers import get_cosine_schedule_with_warmup

    n_train = len(data.train_texts)
    validated = len(data.val_texts) > 0
    schedule = Schedule.for_stage(n_train, params, validated)
    trainable = [p for p in classifier.parameters() if p.requires_grad]
    # A fresh optimizer per stage; the adapter and head carry over from the previous stage.
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, betas=(0.9, 0.95), weight_decay=0.01, fused=True)
    scheduler = get_cosine_schedule_with_warmup(optimizer, schedule.warmup_steps, schedule.total_steps)
    stopper = EarlyStopping(patience=params.patience, min_delta=params.min_delta)
    best_state = classifier.trainable_state()
    targets = soft_targets(torch.as_tensor(data.train_targets))
    truncated_before, batcher.longest = batcher.truncated, 0
    start_score = None

    def evaluate(step: int) -> float | None:
        nonlocal best_state
        score = auroc(data.val_labels, predict_scores(classifier, batcher, data.val_texts, params.eval_batch_size))
        if stopper.update(score, step):
            best_state = classifier.trainable_state()  # kept in memory: adapters are small
        if progress:
            progress(ProgressEvent(stage=name, step=step, total_steps=schedule.total_steps, val_auroc=score))
        return score

    if validated and params.keep_stage_start:
        start_score = evaluate(0)

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
        if validated and (step % schedule.eval_every == 0 or step == schedule.total_steps):
            evaluate(step)
        elif progress:
            progress(ProgressEvent(stage=name, step=step, total_steps=schedule.total_steps))

    if validated:
        classifier.load_trainable_state(best_state)
    best = stopper.best_score
    return StageResult(
        name=name,
        rule=StageRule.early_stopping if validated else StageRule.fixed_schedule,
        n_train=n_train,
        n_val=len(data.val_texts),
        steps=step,
        planned_steps=schedule.planned_steps or None,
        examples=examples,
        start_val_auroc=start_score,
        best_val_auroc=None if not validated or math.isinf(best) else best,
        best_step=stopper.best_step if validated else step,
        stopped_early=stopper.should_stop and step < schedule.total_steps,
        truncated_inputs=batcher.truncated - truncated_before,
        longest_input=batcher.longest,
        wall_s=time.perf_counter() - started,
    )
