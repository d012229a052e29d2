"""The engine's gold stage, trained by a plain `transformers.Trainer` instead of `train_stage`.

Everything but the training harness is the engine's own: the same bought examples and
train/validation split, the same classifier (backbone, LoRA, head) from the same seed, the same
loss, schedule lengths, early-stopping settings and the order of the training batches. What
remains different is what Trainer does its own way (its early-stopping rule, weight decay that
spares biases, dropout draws, checkpoints on disk).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from worker.engine.budget import plan_labels
from worker.engine.methods.context import stage_data, trial_draw
from worker.engine.metrics import accuracy, auroc
from worker.engine.models import load_tokenizer, resolve_model
from worker.engine.runtime import pick_runtime, seed_everything
from worker.engine.spec import Method, TrialSpec
from worker.engine.tasks import Task, get_task
from worker.engine.training.classifier import SequenceClassifier, build_classifier
from worker.engine.training.loop import Schedule
from worker.engine.training.losses import soft_cross_entropy, soft_targets
from worker.engine.weak_labels import weak_labels


@dataclass(frozen=True)
class BaselineResult:
    steps: int
    examples: int  # training examples seen (the last batch of an epoch can be short)
    wall_s: float  # of trainer.train(): training, evaluations, checkpoints, loading the best
    best_val_auroc: float | None
    best_step: int | None
    test_accuracy: float
    test_auroc: float | None
    n_train: int
    n_val: int
    n_test: int

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.wall_s


class TrainerModel(nn.Module):
    """The engine's classifier behind the forward signature Trainer expects."""

    # Trainer reads this PreTrainedModel attribute when a loaded checkpoint lacks keys, as ours
    # lacks the frozen base (see state_dict); None says no key is missing on purpose.
    _keys_to_ignore_on_save = None

    def __init__(self, classifier: SequenceClassifier):
        super().__init__()
        self.classifier = classifier
        self.train_examples = 0  # counted here, since global_step * batch_size overcounts short batches

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        logits = self.classifier(input_ids=input_ids, attention_mask=attention_mask)
        if self.training:
            self.train_examples += len(input_ids)
        out = {"logits": logits}
        if labels is not None:  # the probability of the positive class, as in the engine
            out["loss"] = soft_cross_entropy(logits, soft_targets(labels).to(logits.device))
        return out

    def state_dict(self, *args, **kwargs):
        # Trainer saves a plain module's whole state at every checkpoint; a PeftModel would save
        # only its adapter. Keep to what training changes so the frozen base is not written each
        # evaluation. Trainer loads the best checkpoint with strict=False, so this round-trips.
        full = super().state_dict(*args, **kwargs)
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in full.items() if k in trainable}


def _features(tokenizer, texts, labels, max_length: int) -> list[dict]:
    # Only the inputs the engine's Batcher passes: BERT's token_type_ids would change the model input.
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": float(label)}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels)
    ]


class EngineOrderSampler(torch.utils.data.Sampler):
    """Each epoch, the permutation the engine's train_stage draws from the same generator."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.n = rng, n

    def __iter__(self):
        return iter(self.rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def _trainer_class():
    from transformers import Trainer

    class EngineOrderTrainer(Trainer):
        """Trainer fed the engine's batches: accuracy then differs by harness, not by data order."""

        def __init__(self, *args, order_rng: np.random.Generator, **kwargs):
            super().__init__(*args, **kwargs)
            self.order_rng = order_rng

        def _get_train_sampler(self, train_dataset=None):
            return EngineOrderSampler(self.order_rng, len(train_dataset or self.train_dataset))

    return EngineOrderTrainer


def _positive_probs(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits).float(), dim=-1)[:, 1].numpy()


def run_trainer_baseline(spec: TrialSpec, task: Task | None = None) -> BaselineResult:
    """Train the gold stage of a gold-only seq_sft spec with Trainer and score it on the test set."""
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, PrinterCallback, TrainingArguments
    from transformers.utils import logging as hf_logging

    if spec.method != Method.seq_sft or spec.n_weak:
        raise ValueError("the Trainer baseline reproduces gold-only seq_sft trials (n_weak=0)")
    params = spec.params
    task = task or get_task(spec.task)
    model = resolve_model(spec.model)
    plan = plan_labels(spec, model_is_causal=model.is_causal)
    pool = weak_labels(task, spec.weak_labeler).pool
    n_test = len(task.test) if params.n_test is None else min(params.n_test, len(task.test))
    test = task.test.take(np.arange(n_test))

    # The order of run_trial and run_sequential_sft: the same seeded draw, then the classifier
    # built from the same torch RNG state, so initial LoRA and head weights match the engine's.
    seed_everything(spec.seed)
    rng = np.random.default_rng(spec.seed)  # draws the labels, then orders the batches
    draw = trial_draw(pool, spec.seed, rng)
    runtime = pick_runtime()
    wrapped = TrainerModel(build_classifier(model, runtime))
    tokenizer = load_tokenizer(model)
    gold = draw.take_gold(plan.gold_stage.total)
    data = stage_data(gold, gold.labels.astype("float32"), plan.gold_stage.n_val)
    schedule = Schedule.for_stage(len(data.train_texts), params)

    train_set = _features(tokenizer, data.train_texts, data.train_targets, params.max_length)
    val_set = _features(tokenizer, data.val_texts, data.val_labels, params.max_length)
    test_set = _features(tokenizer, test.texts, test.labels, params.max_length)

    def compute_metrics(prediction) -> dict[str, float]:
        score = auroc(np.rint(prediction.label_ids).astype(int), _positive_probs(prediction.predictions))
        return {"auroc": float("nan") if score is None else score}

    on_gpu = runtime.device.type == "cuda"
    hf_logging.set_verbosity_error()  # Trainer's notes on plain modules and pin_memory are expected here
    with tempfile.TemporaryDirectory(prefix="labelmix-trainer-") as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=params.batch_size,
            per_device_eval_batch_size=params.eval_batch_size,
            learning_rate=params.lr,
            adam_beta2=0.95,
            weight_decay=0.01,
            max_grad_norm=0.0,  # the engine does not clip gradients
            lr_scheduler_type="cosine",
            warmup_steps=schedule.warmup_steps,
            max_steps=schedule.total_steps,
            eval_strategy="steps",
            eval_steps=schedule.eval_every,
            save_strategy="steps",
            save_steps=schedule.eval_every,
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model="auroc",
            greater_is_better=True,
            label_names=["labels"],
            seed=spec.seed,
            report_to="none",
            disable_tqdm=True,
            logging_strategy="no",
            use_cpu=not on_gpu,
            bf16=on_gpu,
        )
        trainer = _trainer_class()(
            order_rng=rng,
            model=wrapped,
            args=args,
            train_dataset=train_set,
            eval_dataset=val_set,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=compute_metrics,
            callbacks=[
                EarlyStoppingCallback(
                    early_stopping_patience=params.patience, early_stopping_threshold=params.min_delta
                )
            ],
        )
        trainer.remove_callback(PrinterCallback)  # it prints every evaluation's metrics
        started = time.perf_counter()
        trainer.train()
        wall_s = time.perf_counter() - started
        test_probs = _positive_probs(trainer.predict(test_set).predictions)

    return BaselineResult(
        steps=trainer.state.global_step,
        examples=wrapped.train_examples,
        wall_s=wall_s,
        best_val_auroc=trainer.state.best_metric,
        best_step=trainer.state.best_global_step,
        test_accuracy=accuracy(test.labels, test_probs),
        test_auroc=auroc(test.labels, test_probs),
        n_train=len(train_set),
        n_val=len(val_set),
        n_test=len(test),
    )
