"""Soft-label cross-entropy and the log-confidence auxiliary loss (Burns et al. 2023)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from worker.engine.training.losses import (
    logconf_loss,
    logconf_targets,
    logconf_weight,
    soft_cross_entropy,
    soft_targets,
)


def test_soft_targets_rows():
    rows = soft_targets(torch.tensor([0.0, 0.25, 1.0]))
    assert torch.equal(rows, torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.0, 1.0]]))
    assert rows.dtype == torch.float32


def test_soft_cross_entropy_equals_cross_entropy_for_one_hot_targets():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 2, generator=gen) * 3
    labels = torch.randint(0, 2, (16,), generator=gen)
    ours = soft_cross_entropy(logits, F.one_hot(labels, 2).float())
    assert ours.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    # and via soft_targets, the way the loop builds gold targets
    ours = soft_cross_entropy(logits, soft_targets(labels.float()))
    assert ours.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)


def test_soft_cross_entropy_hand_computed():
    # Row 1: softmax([0, ln 3]) = [1/4, 3/4], target [0.4, 0.6].
    # Row 2: softmax([ln 4, 0]) = [4/5, 1/5], target [0.9, 0.1].
    logits = torch.tensor([[0.0, math.log(3)], [math.log(4), 0.0]])
    targets = torch.tensor([[0.4, 0.6], [0.9, 0.1]])
    row1 = -(0.4 * math.log(0.25) + 0.6 * math.log(0.75))
    row2 = -(0.9 * math.log(0.8) + 0.1 * math.log(0.2))
    assert soft_cross_entropy(logits, targets).item() == pytest.approx((row1 + row2) / 2, rel=1e-6)


def test_soft_cross_entropy_matches_torch_probability_targets():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 2, generator=gen)
    targets = soft_targets(torch.rand(8, generator=gen))
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(
        F.cross_entropy(logits, targets).item(), rel=1e-6
    )


def test_soft_cross_entropy_gradient_is_softmax_minus_target():
    targets = soft_targets(torch.tensor([0.2, 0.7, 0.5]))
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5], [0.0, 0.0]], requires_grad=True)
    soft_cross_entropy(logits, targets).backward()
    expected = (torch.softmax(logits.detach(), -1) - targets) / 3
    assert torch.allclose(logits.grad, expected, atol=1e-7)
    assert logits.grad.abs().max() > 0.1


def test_soft_cross_entropy_gradient_zero_when_softmax_equals_target():
    p = torch.tensor([0.1, 0.35, 0.5, 0.8, 0.99])
    targets = soft_targets(p)
    logits = torch.log(targets).clone().requires_grad_(True)  # softmax(log t) = t
    loss = soft_cross_entropy(logits, targets)
    loss.backward()
    assert torch.allclose(logits.grad, torch.zeros_like(logits), atol=1e-7)
    # the loss is then the targets' own entropy: its minimum over logits
    entropy = -(targets * torch.log(targets)).sum(-1).mean()
    assert loss.item() == pytest.approx(entropy.item(), rel=1e-6)


def test_soft_cross_entropy_is_fp32_for_low_precision_logits():
    logits = torch.tensor([[0.5, -0.5]], dtype=torch.bfloat16)
    loss = soft_cross_entropy(logits, torch.tensor([[0.3, 0.7]]))
    assert loss.dtype == torch.float32


# --------------------------------------------------------------------------- log-confidence


def batch(p_positive: list[float], mean_label: float, seed: int = 0):
    """Logits whose softmax gives p_positive, and soft weak targets whose positive mean is mean_label."""
    p = torch.tensor(p_positive, dtype=torch.float32)
    logits = torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=-1)
    n = len(p_positive)
    # Soft labels spread around mean_label in +/- pairs, in a seeded order: their mean is mean_label.
    spread = np.random.default_rng(seed).permutation(np.resize([0.05, -0.05, 0.03, -0.03], n))
    weak = mean_label + spread
    assert weak.mean() == pytest.approx(mean_label, abs=1e-9) and (0 < weak).all() and (weak < 1).all()
    return logits, soft_targets(torch.tensor(weak, dtype=torch.float32))


P10 = [0.05, 0.92, 0.40, 0.61, 0.13, 0.77, 0.33, 0.58, 0.86, 0.21]


def test_hardened_predictions_follow_the_quantile_of_class0_at_the_mean_label():
    logits, targets = batch(P10, mean_label=0.3)
    hardened = logconf_targets(logits, targets, weight=1.0)
    probs0 = torch.softmax(logits, -1)[:, 0]
    threshold = torch.quantile(probs0, targets[:, 1].mean())
    assert torch.equal(hardened[:, 1], (probs0 < threshold).float())
    # The three most confident positives are hardened to 1, the rest to 0.
    top3 = set(np.argsort(P10)[-3:].tolist())
    assert set(np.flatnonzero(hardened[:, 1].numpy()).tolist()) == top3 == {1, 5, 8}
    assert torch.equal(hardened.sum(-1), torch.ones(10))


@pytest.mark.parametrize("k", range(1, 10))
def test_hardened_predictions_keep_the_weak_class_balance(k):
    logits, targets = batch(P10, mean_label=k / 10, seed=k)
    hardened = logconf_targets(logits, targets, weight=1.0)
    assert int(hardened[:, 1].sum()) == k
    # and it is the k highest predictions that become positive
    assert set(np.flatnonzero(hardened[:, 1].numpy()).tolist()) == set(np.argsort(P10)[-k:].tolist())


def test_balance_comes_from_the_labels_not_the_predictions():
    # The model thinks everything is positive; the weak labels say 20% are: only 2 stay positive.
    p = [0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99]
    logits, targets = batch(p, mean_label=0.2)
    hardened = logconf_targets(logits, targets, weight=1.0)
    assert np.flatnonzero(hardened[:, 1].numpy()).tolist() == [8, 9]


def test_weight_zero_returns_the_targets_and_one_the_hardened_predictions():
    logits, targets = batch(P10, mean_label=0.4)
    assert torch.allclose(logconf_targets(logits, targets, 0.0), targets)
    hardened = logconf_targets(logits, targets, 1.0)
    assert set(hardened.flatten().tolist()) <= {0.0, 1.0}
    mixed = logconf_targets(logits, targets, 0.25)
    assert torch.allclose(mixed, 0.75 * targets + 0.25 * hardened)
    assert torch.allclose(mixed.sum(-1), torch.ones(10))


def test_logconf_loss_does_not_backpropagate_through_the_hardened_targets():
    logits, targets = batch(P10, mean_label=0.5)
    logits = logits.clone().requires_grad_(True)
    mixed = logconf_targets(logits, targets, 0.5)
    assert not mixed.requires_grad
    logconf_loss(logits, targets, 0.5).backward()
    expected = (torch.softmax(logits.detach(), -1) - mixed) / len(P10)
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_logconf_loss_with_zero_weight_is_plain_soft_cross_entropy():
    logits, targets = batch(P10, mean_label=0.6)
    assert logconf_loss(logits, targets, 0.0).item() == pytest.approx(soft_cross_entropy(logits, targets).item())


@pytest.mark.parametrize(
    "step_frac, expected",
    [(0.0, 0.0), (0.025, 0.125), (0.05, 0.25), (0.1, 0.5), (0.2, 0.5), (0.5, 0.5), (1.0, 0.5)],
)
def test_logconf_weight_ramps_linearly_then_holds(step_frac, expected):
    assert logconf_weight(step_frac, aux_weight=0.5, warmup_frac=0.1) == pytest.approx(expected)


def test_logconf_weight_is_monotone_and_capped():
    fracs = np.linspace(0, 1, 101)
    weights = [logconf_weight(f, aux_weight=0.7, warmup_frac=0.3) for f in fracs]
    assert all(b >= a for a, b in zip(weights, weights[1:]))
    assert max(weights) == pytest.approx(0.7)
    assert weights[15] == pytest.approx(0.7 * 0.15 / 0.3)
    assert logconf_weight(0.9, aux_weight=0.0, warmup_frac=0.1) == 0.0
    assert logconf_weight(0.5, aux_weight=1.0, warmup_frac=1.0) == pytest.approx(0.5)
