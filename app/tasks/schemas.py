from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field

from app.schemas import examples as ex
from app.schemas.stored import AsStored


class UploadSummary(BaseModel):
    rows_read: int
    rows_kept: int
    duplicates_dropped: int = Field(description="rows identical to an earlier one (text, label, weak label)")
    left_out: dict[str, int] = Field(
        default_factory=dict, description="records of an annotation export left out on purpose, by why: "
        "no_annotation, annotators_tied, cancelled_annotations, discarded_responses, draft_responses")


class TaskDeletedOut(BaseModel):
    """What DELETE /tasks/{task} removed with the task."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TASK_DELETED))

    task: str
    rows: int = Field(description="its stored rows (pool and test)")
    trials: int = Field(description="trials trained on it, whatever their state")
    allocations: int = Field(description="allocations on it, with their points and Optuna studies")
    studies: int = Field(description="grid studies on it")


class WeakLabelQuality(AsStored):
    """How the default weak labels were made and how good they are against the pool's gold labels
    (worker/engine/weak_labels.describe), as stored on the task when they were built."""

    task: str | None = None
    labeler: str | None = Field(None, description="the weak labeler, e.g. sft:minilm-l3:256")
    n_labeled: int | None = Field(None, description="pool examples given a weak label")
    n_labeler_train: int | None = Field(None, description="gold labels the labeler trained on")
    accuracy: float | None = None
    auroc: float | None = None
    labeled_positive_rate: float | None = None
    gold_positive_rate: float | None = None
    labeled_class_rates: list[float] | None = Field(
        None, description="K > 2 classes: each class's share of the weak labels")
    gold_class_rates: list[float] | None = Field(
        None, description="K > 2 classes: each class's share of the gold labels")
    mean_confidence: float | None = None
    calibration_error: float | None = None
    build_s: float | None = Field(None, description="seconds it took to build them")
    warnings: list[str] | None = None


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.TASK))

    # Read from a row's shown_name: the name the team gave it, not the team-prefixed one it is stored as.
    name: str = Field(validation_alias=AliasChoices("shown_name", "name"))
    source: str
    description: str
    n_pool: int
    n_test: int
    pool_positive_rate: float | None = Field(description="share of label 1 in the pool (binary tasks; None otherwise)")
    test_positive_rate: float | None = Field(
        description="share of label 1 in the test set (binary tasks; None otherwise)")
    classes: list[str] | None = Field(
        None, description="a task of more than two classes: their names, in label order (None: binary, labels 0 and 1)")
    pool_class_rates: list[float] | None = Field(None, description="each class's share of the pool (K > 2 classes)")
    test_class_rates: list[float] | None = Field(
        None, description="each class's share of the test set (K > 2 classes): the largest is chance, the accuracy of "
        "always naming the commonest class")
    has_weak_labels: bool
    weak_label_accuracy: float | None
    weak_labels: WeakLabelQuality | None = Field(
        None,
        description="how the default weak labels were made (labeler, labeled count, build time) and how good "
        "they are against gold: accuracy, AUROC, share labeled positive, calibration error, warnings",
    )
    version: int = Field(1, description="build of the task's data; trials of older builds are kept apart")
    upload: UploadSummary | None = Field(
        None, description="in the answer to an upload only: how many of the file's rows were read and kept")
    created_at: datetime

    @computed_field
    @property
    def warnings(self) -> list[str]:
        """What a person should know before spending on this task's weak labels."""
        if self.weak_labels is None:
            return ["the default weak labels are being built (a small model trains on gold labels): "
                    "their quality shows here when they are ready"]
        return list(self.weak_labels.warnings or [])
