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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import torch

from ..metrics import above_chance, auroc
from ..runtime import Runtime
from ..settings import engine_settings
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


class TimeLimitExceeded(RuntimeError):
    """A trial ran past its wall-clock limit (raised between training steps)."""


@dataclass(frozen=True)
class TimeLimit:
    """A wall-clock limit on a trial, from `started` (time.monotonic()); call it to check."""

    limit_s: float
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.started + self.limit_s

    def __call__(self) -> None:
        if time.monotonic() > self.deadline:
            raise TimeLimitExceeded(f"exceeded the time limit of {self.limit_s:g} s")


# Checks run after every training step; one raises to end the trial where it stands. The caller
# (a worker: its time limit, a claim it lost) sets them around run_trial or run_group, so the method
# code and the group driver between it and this loop need not carry them.
_step_checks: ContextVar[tuple[Callable[[], None], ...]] = ContextVar("step_checks", default=())


@contextmanager
def checked_between_steps(*checks: Callable[[], None]) -> Iterator[None]:
    """Run `checks` after each training step of the trials trained in this block (this thread)."""
    token = _step_checks.set((*_step_checks.get(), *checks))
    try:
        yield
    finally:
        _step_checks.reset(token)


@dataclass(frozen=True)
class StageData:
    train_texts: Sequence[str]
    train_targets: np.ndarray  # probability of the positive class: 0/1 for gold, soft for weak (K > 2: rows)
    val_texts: Sequence[str]
    val_labels: np.ndarray  # hard labels to score validation AUROC against

    @property
    def n_classes(self) -> int:
        return 2 if np.ndim(self.train_targets) == 1 else int(np.shape(self.train_targets)[1])


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
        examples = params.max_examples_per_stage
        if not validated and params.fixed_schedule_examples is not None:
            examples = params.fixed_schedule_examples
        epochs = max(examples / n_train, 1.0)
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
        self._uncut_lengths: dict[str, int] = {}  # with _token_ids: each text's tokens before any cut
        self.truncated = 0  # encodings cut so far
        self.longest = 0  # tokens in the longest encoding so far, before any cut

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        formatted = [self.formatter(t) for t in texts]
        ids = self.tokenizer(formatted, verbose=False)["input_ids"]
        too_long = [i for i, tokens in enumerate(ids) if len(tokens) > self.max_length]
        self.longest = max([self.longest, *map(len, ids)])
        if self._token_ids is not None:
            self._uncut_lengths.update(zip(texts, map(len, ids)))
        if too_long:
            self.truncated += len(too_long)
            cut = self.tokenizer([formatted[i] for i in too_long], truncation=True, max_length=self.max_length)
            for i, tokens in zip(too_long, cut["input_ids"]):
                ids[i] = tokens
        return ids

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, formatted and cut to max_length (cached when there is no formatter)."""
        if self._token_ids is None:
            return self._encode(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._token_ids]
        if missing:
            self._token_ids.update(zip(missing, self._encode(missing)))
        return [self._token_ids[t] for t in texts]

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.pad(self.token_ids(texts))

    def input_stats(self, texts: Sequence[str]) -> tuple[int, int] | None:
        """(distinct texts cut to max_length, tokens in the longest before any cut), whenever they were
        first tokenized: a stage's inputs may have been scored before it (uncertainty sampling's pool).
        None with a formatter: each call formats anew, so only the running counters say what was cut."""
        if self._token_ids is None:
            return None
        self.token_ids(texts)
        lengths = [self._uncut_lengths[t] for t in dict.fromkeys(texts)]
        return sum(n > self.max_length for n in lengths), max(lengths, default=0)

    def pad(self, ids: list[list[int]]) -> dict[str, torch.Tensor]:
        """Pad token ids to the longest of them, on the tokenizer's padding side, as tensors on the
        run's device: what tokenizer.pad gives, without its per-row Python (it took 22 ms of a
        grouped GPU step for a batch of 256, more than the step's forward; bench profile in the README).
        """
        longest = max(map(len, ids))
        input_ids = np.full((len(ids), longest), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(ids), longest), dtype=np.int64)
        left = self.tokenizer.padding_side == "left"
        for row, tokens in enumerate(ids):
            span = slice(longest - len(tokens), longest) if left else slice(0, len(tokens))
            input_ids[row, span] = tokens
            mask[row, span] = 1
        device = self.runtime.device
        return {"input_ids": torch.from_numpy(input_ids).to(device), "attention_mask": torch.from_numpy(mask).to(device)}


@torch.inference_mode()
def predict_scores(
    classifier: SequenceClassifier, batcher: Batcher, texts: Sequence[str], batch_size: int,
    merged: bool | None = None,
) -> np.ndarray:
    """Log-odds of the positive class for each text, in the order given (float64: they keep their
    order where a float32 probability has rounded to 0 or 1); with a head of K > 2 classes, a row of
    log-probabilities for each text.

    Batches are formed from texts sorted by length, so each pads to a length near its own texts'
    rather than to the longest text that happened to arrive with them; the scores come back in
    the caller's order. `python -m bench.engine.evaluation`: 1.27x on the cities test set (short
    texts of similar length: the gain grows with their spread).
    With `merged` the adapter is folded into the base for the call (classifier.merged_projections).
    """
    was_training = classifier.training
    classifier.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    n_classes = head_classes(classifier)
    scores = np.zeros(len(texts) if n_classes == 2 else (len(texts), n_classes), dtype=np.float64)
    with merged_for_scoring(classifier, merged):
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            logits = classifier(**batcher([texts[i] for i in rows])).double()
            if n_classes == 2:
                scores[rows] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
            else:
                scores[rows] = torch.log_softmax(logits, dim=-1).cpu().numpy()
    classifier.train(was_training)
    return scores


def head_classes(classifier) -> int:
    """How many classes the classifier's head scores (a grouped trial's view has 2-way heads only)."""
    head = getattr(classifier, "head", None)
    return head.out_features if isinstance(head, torch.nn.Linear) else 2


def merged_for_scoring(classifier, merged: bool | None = None):
    """The classifier's merged-adapter block if `merged` (None: LABELMIX_MERGED_INFERENCE) and it has one.

    Never under autocast: a merged weight would be rounded to bf16, and the model scored otherwise than
    it trained (merged_projections likewise leaves bf16 bases alone)."""
    block = getattr(classifier, "merged_adapter", None)
    if merged is None:
        merged = engine_settings().merged_inference
    as_trained = getattr(classifier, "autocast_dtype", None) is not None
    return block() if block is not None and merged and not as_trained else nullcontext()


def predict_probs(
    classifier: SequenceClassifier, batcher: Batcher, texts: Sequence[str], batch_size: int
) -> np.ndarray:
    """Probability of the positive class for each text (K > 2 classes: a row of class probabilities)."""
    scores = predict_scores(classifier, batcher, texts, batch_size)
    if scores.ndim == 2:
        return np.exp(scores)
    return 1.0 / (1.0 + np.exp(-scores))


def model_positions(model_config) -> int:
    """The longest input the model's position embeddings allow."""
    return getattr(model_config, "max_position_embeddings", None) or 512


def input_limit(params: MethodParams, model_config) -> int:
    """The recipe's max_length, or (None) the longest input the model's positions allow."""
    positions = model_positions(model_config)
    return min(params.max_length or positions, positions)


class StageRun:
    """One stage's training state, advanced a step at a time by whoever runs the forward pass.

    `train_stage` runs one alone; `worker.engine.group` runs several trials' stages through one
    forward. Either way each stage keeps its own batch order, optimizer, schedule, early stopping
    and best state, so a stage trains the same whichever runs it. `model` is the trial's
    classifier (or its view of a grouped model): callable on a batch, with train/eval modes,
    trainable_parameters() and trainable_state()/load_trainable_state().
    """

    def __init__(
        self,
        name: str,
        model,
        batcher: Batcher,
        data: StageData,
        params: MethodParams,
        rng: np.random.Generator,
        use_logconf: bool = False,
        progress: ProgressCallback | None = None,
    ):
        from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

        self.started = time.perf_counter()
        self.name, self.model, self.batcher, self.data = name, model, batcher, data
        self.params, self.rng, self.use_logconf, self.progress = params, rng, use_logconf, progress
        self.n_train = len(data.train_texts)
        self.validated = len(data.val_texts) > 0
        self.schedule = Schedule.for_stage(self.n_train, params, self.validated)
        # A fresh optimizer per stage; the adapter and head carry over from the previous stage.
        self.optimizer = torch.optim.AdamW(
            model.trainable_parameters(), lr=params.lr, betas=(0.9, 0.95), weight_decay=0.01, fused=True
        )
        if self.validated and params.lr_schedule == "constant":
            # Its validation decides how long the stage runs: there is no end to decay towards.
            self.scheduler = get_constant_schedule_with_warmup(self.optimizer, self.schedule.warmup_steps)
        else:
            self.scheduler = get_cosine_schedule_with_warmup(
                self.optimizer, self.schedule.warmup_steps, self.schedule.total_steps
            )
        self.stopper = EarlyStopping(
            patience=params.patience,
            min_delta=params.min_delta,
            # At least an epoch: every training label is seen once more before the stage gives up.
            patience_examples=max(params.patience_examples, self.n_train) if params.patience_examples else 0,
        )
        self.best_state = model.trainable_state()
        self.targets = soft_targets(torch.as_tensor(data.train_targets))
        self.truncated_before, batcher.longest = batcher.truncated, 0
        self.start_score = None
        self.step, self.examples, self.order = 0, 0, np.empty(0, dtype=np.int64)
        if self.validated and params.keep_stage_start:
            self.start_score = self._evaluate(0)
        if not above_chance(self.start_score, data.val_labels, n_classes=data.n_classes):
            # A random head, or a previous stage that left nothing to build on: the cold start.
            self.stopper.not_before = params.cold_start_examples
        model.train()

    @property
    def done(self) -> bool:
        return self.step >= self.schedule.total_steps or self.stopper.should_stop

    def next_batch(self) -> tuple[list[str], torch.Tensor]:
        """The next training texts and their soft targets, from this stage's own shuffled epochs."""
        if len(self.order) == 0:
            self.order = self.rng.permutation(self.n_train)
        batch, self.order = self.order[: self.params.batch_size], self.order[self.params.batch_size :]
        return [self.data.train_texts[i] for i in batch], self.targets[batch]

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.device)
        if self.use_logconf:
            p = self.params
            weight = logconf_weight(self.step / self.schedule.total_steps, p.logconf_aux_weight, p.logconf_warmup_frac)
            return logconf_loss(logits, targets, weight)
        return soft_cross_entropy(logits, targets)

    def after_backward(self, batch_rows: int) -> None:
        """Apply the step whose gradients are in place; validate when one is due."""
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.examples += batch_rows
        if self.validated and (self.step % self.schedule.eval_every == 0 or self.step == self.schedule.total_steps):
            self._evaluate(self.step)  # predict_scores puts the model back in training mode
        elif self.progress:
            self.progress(ProgressEvent(stage=self.name, step=self.step, total_steps=self.schedule.total_steps))
        for check in _step_checks.get():
            check()

    def _evaluate(self, step: int) -> float:
        batch_size = self.batcher.runtime.eval_batch_size(self.params.eval_batch_size)
        scores = predict_scores(self.model, self.batcher, self.data.val_texts, batch_size)
        score = auroc(self.data.val_labels, scores)
        if self.stopper.update(score, step, self.examples):
            self.best_state = self.model.trainable_state()  # kept in memory: adapters are small
        if self.progress:
            self.progress(ProgressEvent(stage=self.name, step=step, total_steps=self.schedule.total_steps, val_auroc=score))
        return score

    def finish(self) -> StageResult:
        """Restore the best state (a validated stage) and report the stage."""
        if self.validated:
            self.model.load_trainable_state(self.best_state)
        best = self.stopper.best_score
        stats = self.batcher.input_stats([*self.data.train_texts, *self.data.val_texts])
        if stats is None:  # a formatter: only the running counters know
            stats = (self.batcher.truncated - self.truncated_before, self.batcher.longest)
        truncated, longest = stats
        return StageResult(
            name=self.name,
            rule=StageRule.early_stopping if self.validated else StageRule.fixed_schedule,
            n_train=self.n_train,
            n_val=len(self.data.val_texts),
            steps=self.step,
            planned_steps=self.schedule.planned_steps or None,
            examples=self.examples,
            start_val_auroc=self.start_score,
            best_val_auroc=None if not self.validated or math.isinf(best) else best,
            best_step=self.stopper.best_step if self.validated else self.step,
            stopped_early=self.stopper.should_stop and self.step < self.schedule.total_steps,
            # Its last evaluations still gained (patience not run out) when the bound ended it.
            still_improving=self.validated and self.step >= self.schedule.total_steps and not self.stopper.should_stop,
            cold_start_examples=self.stopper.not_before,
            truncated_inputs=truncated,
            longest_input=longest,
            wall_s=time.perf_counter() - self.started,
        )


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
    return train_run(StageRun(name, classifier, batcher, data, params, rng, use_logconf, progress))


def train_run(run: StageRun) -> StageResult:
    """Step a stage on its own model, one batch at a time, to its end."""
    while not run.done:
        texts, targets = run.next_batch()
        run.loss(run.model(**run.batcher(texts)), targets).backward()
        run.after_backward(len(texts))
    return run.finish()
