"""A validated stage that never left chance is trained again from a fresh adapter and head; the best
attempt by validation is kept, its state restored, and the result says how many restarts it took."""

from __future__ import annotations

import numpy as np
import torch

from worker.engine.methods.sequential import TrainRequest, _trained
from worker.engine.models import resolve_model
from worker.engine.runtime import pick_runtime, seed_everything
from worker.engine.spec import MethodParams, StageResult
from worker.engine.training.classifier import HEAD_INIT_SCALE, build_classifier, redrawn_state
from worker.engine.training.loop import StageData

VAL = np.array([0, 1] * 25)  # 50 validation labels: an AUROC must be about 0.66 to be clearly above 0.5


class Model:
    """Trainable state only: what _trained reads and writes."""

    def __init__(self):
        self.state = {"head.weight": torch.ones(2, 4), "head.bias": torch.zeros(2)}

    def trainable_state(self):
        return {k: v.clone() for k, v in self.state.items()}

    def load_trainable_state(self, state):
        self.state = {k: v.clone() for k, v in state.items()}


def result(best: float, cold: int = 4096) -> StageResult:
    return StageResult(name="gold", n_train=200, n_val=50, steps=128, examples=4096, best_val_auroc=best,
                       best_step=8, stopped_early=True, cold_start_examples=cold, wall_s=10.0)


def drive(scores: list[float], restarts: int = 2, cold: int = 4096):
    """Run _trained, answering its k-th request with an attempt that scores scores[k] and leaves the
    model's head weight at k (as training would leave its own best state)."""
    model = Model()
    data = StageData(["t"] * 200, np.zeros(200, dtype=np.float32), ["v"] * 50, VAL)
    request = TrainRequest("gold", None, data, MethodParams(max_restarts=restarts), np.random.default_rng(0))
    steps, asked = _trained(request, model, [0, 2]), 0
    next(steps)
    try:
        while True:
            model.state["head.weight"].fill_(asked)
            answer = result(scores[asked], cold)
            asked += 1
            steps.send(answer)
    except StopIteration as finished:
        return finished.value, model, asked


def test_an_attempt_that_learned_is_kept_without_restarting():
    kept, model, asked = drive([0.91])
    assert asked == 1 and kept.restarts == 0 and kept.best_val_auroc == 0.91


def test_a_stage_at_chance_restarts_until_one_attempt_learns():
    kept, model, asked = drive([0.55, 0.90, 0.99])
    assert asked == 2 and kept.restarts == 1 and kept.best_val_auroc == 0.90
    assert kept.wall_s == 20.0  # every attempt's time counts
    assert model.state["head.weight"].eq(1).all()  # the second attempt's state is the one left


def test_the_best_attempt_is_kept_when_none_learns():
    kept, model, asked = drive([0.60, 0.52, 0.58], restarts=2)
    assert asked == 3 and kept.restarts == 2 and kept.best_val_auroc == 0.60
    assert model.state["head.weight"].eq(0).all()  # the first attempt's state, restored


def test_no_restart_without_a_cold_start_or_when_the_recipe_has_none():
    assert drive([0.5], cold=0)[2] == 1  # started above chance: declining is the previous stage's business
    assert drive([0.5], restarts=0)[2] == 1  # the paper's loop


def test_a_redrawn_adapter_and_head_are_drawn_as_a_new_classifier_draws_them():
    seed_everything(0)
    classifier = build_classifier(resolve_model("minilm-l6"), pick_runtime())
    built = classifier.trainable_state()
    fresh = redrawn_state(built, seed=7)
    assert fresh.keys() == built.keys() and redrawn_state(built, seed=7)["head.weight"].equal(fresh["head.weight"])
    assert not redrawn_state(built, seed=8)["head.weight"].equal(fresh["head.weight"])
    for name, value in fresh.items():
        assert value.shape == built[name].shape and value.dtype == built[name].dtype
        if "lora_B" in name or name == "head.bias":
            assert not value.any()
        else:  # the same uniform bound as the classifier's own draw
            bound = 1 / value.shape[1] ** 0.5 * (HEAD_INIT_SCALE if name == "head.weight" else 1)
            assert value.abs().max() <= bound and built[name].abs().max() <= bound * 1.0001
            assert value.abs().max() > 0.9 * bound
