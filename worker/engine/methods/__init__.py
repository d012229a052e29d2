"""The elicitation methods of the paper, each a function of a TrialContext and a LabelPlan."""

from __future__ import annotations

from collections.abc import Callable

from ..spec import Method
from .context import MethodOutcome, TrialContext
from .icl import run_icl
from .sequential import run_sequential_sft

METHOD_RUNNERS: dict[Method, Callable[[TrialContext], MethodOutcome]] = {
    Method.seq_sft: run_sequential_sft,
    Method.prompted_sft: run_sequential_sft,
    Method.uncertainty_sft: run_sequential_sft,
    Method.logconf_sft: run_sequential_sft,
    Method.icl: run_icl,
}

__all__ = ["METHOD_RUNNERS", "MethodOutcome", "TrialContext"]
