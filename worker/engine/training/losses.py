"""Losses on soft labels: weak labels are probabilities, not classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_targets(p_positive: torch.Tensor) -> torch.Tensor:
    """[1-p, p] rows from the probability of the positive class."""
    p = p_positive.float()
    return torch.stack([1 - p, p], dim=-1)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of 2-way logits against target distributions (rows summing to 1)."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def logconf_weight(step_frac: float, aux_weight: float, warmup_frac: float) -> float:
    """The auxiliary weight, ramped in linearly over the first warmup_frac of the stage."""
    return aux_weight * min(1.0, step_frac / warmup_frac)


def logconf_targets(logits: torch.Tensor, targets: torch.Tensor, weight: float) -> torch.Tensor:
    """Burns et al. (2023): mix the weak targets with the model's own hardened predictions.

    The hardening threshold is the quantile of the batch's predictions at the batch's mean label,
    so the hardened predictions keep the weak labels' class balance instead of collapsing to one class.
    """
    probs = F.softmax(logits.detach().float(), dim=-1)
    mean_positive = targets[:, 1].mean()
    threshold = torch.quantile(probs[:, 0], mean_positive)
    hardened = torch.stack([probs[:, 0] >= threshold, probs[:, 0] < threshold], dim=-1).float()
    return (1 - weight) * targets + weight * hardened


def logconf_loss(logits: torch.Tensor, targets: torch.Tensor, weight: float) -> torch.Tensor:
    return soft_cross_entropy(logits, logconf_targets(logits, targets, weight))
