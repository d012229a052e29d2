"""The elicitation engine: pure training code. No database, no queue: spec in, result out.

Importing this package stays light (no torch): the service validates specs and budgets with it.
`run_trial` loads torch on first use.
"""

from .budget import AllocationError, min_labels, plan_labels
from .models import ModelSpecError, resolve_model
from .spec import Method, MethodParams, ProgressEvent, StageResult, TrialResult, TrialSpec
from .tasks import UnknownTaskError, get_task, task_names
from .weak_labels import WeakLabelerError, weak_labels

__all__ = [
    "AllocationError",
    "Method",
    "MethodParams",
    "ModelSpecError",
    "ProgressEvent",
    "StageResult",
    "TrialResult",
    "TrialSpec",
    "UnknownTaskError",
    "WeakLabelerError",
    "get_task",
    "min_labels",
    "plan_labels",
    "resolve_model",
    "run_trial",
    "task_names",
    "weak_labels",
]


def __getattr__(name: str):
    if name == "run_trial":
        from .trial import run_trial  # loads torch: `import worker.engine` stays light for the service

        return run_trial
    raise AttributeError(name)
