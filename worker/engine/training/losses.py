"""Losses on soft labels: weak labels are probabilities, not classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..class_balance import balancing_biases


def soft_targets(targets: torch.Tensor) -> torch.Tensor:
    """Target distributions: [1-p, p] rows from a binary task's probabilities of the positive class,
    rows of class probabilities as they are."""
    p = targets.float()
    if p.ndim == 2:
        return p
    return torch.stack([1 - p, p], dim=-1)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of K-way logits against target distributions (rows summing to 1)."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def logconf_weight(step_frac: float, aux_weight: float, warmup_frac: float) -> float:
    """The auxiliary weight, ramped in linearly over the first warmup_frac of the stage."""
    return aux_weight * min(1.0, step_frac / warmup_frac)


def logconf_targets(logits: torch.Tensor, targets: torch.Tensor, weight: float) -> torch.Tensor:
    """Burns et al. (2023): mix the weak targets with the model's own hardened predictions.

    Binary: the hardening threshold is the quantile of the batch's predictions at the batch's mean
    label, so the hardened predictions keep the weak labels' class balance instead of collapsing to
    one class (their code). K classes: the same idea per class; each row's prediction is shifted by
    a per-class bias until the batch's hardened classes match the weak targets' balance
    (`balanced_hardening`), then hardened to one-hot.
    """
    probs = F.softmax(logits.detach().float(), dim=-1)
    if probs.shape[-1] > 2:
        return (1 - weight) * targets + weight * balanced_hardening(probs, targets.mean(dim=0))
    mean_positive = targets[:, 1].mean()
    threshold = torch.quantile(probs[:, 0], mean_positive)
    hardened = torch.stack([probs[:, 0] >= threshold, probs[:, 0] < threshold], dim=-1).float()
    return (1 - weight) * targets + weight * hardened


def balanced_hardening(probs: torch.Tensor, balance: torch.Tensor) -> torch.Tensor:
    """One-hot rows of argmax(log probs + b), b fitted so each class's share of the rows approaches
    `balance` (class_balance.balancing_biases: the binary quantile's K-class analogue)."""
    log_probs = probs.detach().clamp_min(1e-12).log()
    bias = balancing_biases(log_probs.double().cpu().numpy(), balance.detach().double().cpu().numpy())
    shifted = log_probs + torch.as_tensor(bias, dtype=log_probs.dtype, device=log_probs.device)
    return F.one_hot(shifted.argmax(dim=-1), probs.shape[-1]).float()


def logconf_loss(logits: torch.Tensor, targets: torch.Tensor, weight: float) -> torch.Tensor:
    return soft_cross_entropy(logits, logconf_targets(logits, targets, weight))
