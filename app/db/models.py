"""Tables: tasks (and uploaded examples), trials (the cost-agnostic cache), allocations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime, utcnow


class TaskSource(StrEnum):
    builtin = "builtin"
    upload = "upload"
    huggingface = "huggingface"


class TrialStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


# Work still to come: a trial that will train, or trains now.
ACTIVE_TRIAL_STATUSES = (TrialStatus.queued, TrialStatus.running)


class AllocationStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


# An allocation that has not ended: it may still queue trials and write its points.
OPEN_ALLOCATION_STATUSES = (AllocationStatus.queued, AllocationStatus.running)


# Between a team and its upload's name in the stored name: no task or team name can hold one.
TEAM_SEPARATOR = "."


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    n_pool: Mapped[int]
    n_test: Mapped[int]
    # Binary tasks only (None for a task of more classes, whose balance is in the class rates below).
    pool_positive_rate: Mapped[float | None] = mapped_column(Float)
    test_positive_rate: Mapped[float | None] = mapped_column(Float)
    # A task of K > 2 classes: their names in label order, and each one's share of pool and test.
    # None for a binary task (classes "0" and "1").
    classes: Mapped[list | None] = mapped_column(JSONType)
    pool_class_rates: Mapped[list | None] = mapped_column(JSONType)
    test_class_rates: Mapped[list | None] = mapped_column(JSONType)
    has_weak_labels: Mapped[bool] = mapped_column(default=False)
    weak_label_accuracy: Mapped[float | None] = mapped_column(Float)
    # How the default weak labels were made and how good they are (weak_labels.describe).
    weak_labels: Mapped[dict | None] = mapped_column(JSONType)
    # A built-in task rebuilt by a newer labelmix gets a new version (engine.tasks.task_version).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Moved whenever its points' aggregates change (trials.aggregates.refresh): names the
    # results a cached answer was computed from (api.stored_answers, and the ETag every process agrees on).
    results_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # The team an uploaded task belongs to; None for built-in and hub tasks, which every team shares
    # (and with them their trials: the trial cache is shared where the data is).
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def shown_name(self) -> str:
        """The name its team gave it: an upload is stored under its team's prefix (tasks.names),
        so two teams' "reviews" are two tasks with trial keys of their own."""
        prefix = f"{self.team}{TEAM_SEPARATOR}"
        return self.name[len(prefix):] if self.team and self.name.startswith(prefix) else self.name



class Example(Base):
    """Rows of an uploaded task; built-in and hub tasks are rebuilt by the engine instead."""

    __tablename__ = "examples"
    __table_args__ = (UniqueConstraint("task_id", "split", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    split: Mapped[str] = mapped_column(String(8))  # "pool" or "test"
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[int] = mapped_column(Integer)
    weak_prob: Mapped[float | None] = mapped_column(Float)
    weak_probs: Mapped[list | None] = mapped_column(JSONType)  # K > 2 classes: a probability per class


class Trial(Base):
    """One elicitation trial. `key` hashes the whole spec: asking twice never trains twice."""

    __tablename__ = "trials"
    __table_args__ = (
        Index("ix_trials_task_id_task_version", "task_id", "task_version"),
        # The frontier's read: one recipe's done trials of a task version.
        Index("ix_trials_task_id_recipe_label", "task_id", "recipe_label"),
        # The trials the aggregates have not counted: normally none, so the check before a read is free.
        Index("ix_trials_unaggregated", "task_id", "task_version", postgresql_where=text("NOT aggregated"),
              sqlite_where=text("NOT aggregated")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(40))
    n_weak: Mapped[int]
    n_gold: Mapped[int]
    seed: Mapped[int]
    weak_labeler: Mapped[str] = mapped_column(String(200))
    recipe: Mapped[str | None] = mapped_column(String(40))  # None: stored before recipes existed
    # trials.recipe_keys, fixed when the trial is created: reads select and group in SQL by these.
    recipe_label: Mapped[str] = mapped_column(String(400), default="", server_default="")
    params_key: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # Counted in its point's row of point_aggregates (trials.aggregates.refresh).
    aggregated: Mapped[bool] = mapped_column(default=False, server_default=false())
    task_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # The engine that trains (or trained) it (worker.engine.spec.ENGINE_VERSION): only the current
    # engine's trials are run and served. A new row is given its spec's (trials.cache, or the ORM
    # hook in trials.recipe_keys); the column's server default, 1, is for every trial stored before
    # the version existed (migration 0011).
    engine_version: Mapped[int] = mapped_column(server_default="1")
    spec: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default=TrialStatus.queued, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSONType)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    selection_accuracy: Mapped[float | None] = mapped_column(Float)
    holdout_accuracy: Mapped[float | None] = mapped_column(Float)
    test_auroc: Mapped[float | None] = mapped_column(Float)
    wall_s: Mapped[float | None] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When a message for this trial was last sent to the broker: a queued trial whose message is
    # long gone (taken by a worker that died before claiming it) is sent again (trials.cache).
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The latest progress of the running attempt, written with its heartbeat (app/jobs.py):
    # {stage, step, total_steps, val_auroc, at}; kept once it ends (how far it got).
    progress: Mapped[dict | None] = mapped_column(JSONType)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    task: Mapped[Task] = relationship()

    # What points.group_trials reads from the result; trial_records.TrialRecord has them as columns.
    @property
    def n_test(self) -> int:
        return (self.result or {}).get("n_test") or 0

    @property
    def test_correct(self) -> str | None:
        return (self.result or {}).get("test_correct")

    @property
    def learned(self) -> bool | None:
        """Whether it learned at all (engine TrialResult.learned); None for trials stored before."""
        return (self.result or {}).get("learned")


class PointAggregate(Base):
    """Storage, not the point value (allocations.search.Point): one point's done trials (same task and engine version, model, method, weak labeler, recipe,
    params and label counts; seeds pooled) summed up, so that a frontier reads one row per point.

    Kept by trials.aggregates from the trials themselves: what a point says is computed by
    the same code whether it is read from here or from the trials (tests/app/test_stored_reads.py).
    """

    __tablename__ = "point_aggregates"
    __table_args__ = (
        UniqueConstraint(
            "task_id", "task_version", "engine_version", "model", "method", "weak_labeler", "recipe", "params_key",
            "n_weak", "n_gold", name="uq_point_aggregates_point",
        ),
        Index("ix_point_aggregates_task_id_recipe_label", "task_id", "task_version", "recipe_label"),
        Index("ix_point_aggregates_task_id_revision", "task_id", "task_version", "revision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    task_version: Mapped[int]
    engine_version: Mapped[int] = mapped_column(server_default="1")  # set by trials.aggregates
    recipe_label: Mapped[str] = mapped_column(String(400))
    model: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(40))
    weak_labeler: Mapped[str] = mapped_column(String(200))
    recipe: Mapped[str] = mapped_column(String(40))  # "" for trials stored before recipes existed
    params_key: Mapped[str] = mapped_column(String(16))
    n_weak: Mapped[int]
    n_gold: Mapped[int]
    # The point's order among others: its trials' first id (as grouping the trials in id order gives).
    first_trial_id: Mapped[int]
    n_trials: Mapped[int]
    # statistics.fmean of the accuracies in `trials`, as a point read from its trials computes them.
    test_mean: Mapped[float] = mapped_column(Float)
    selection_mean: Mapped[float] = mapped_column(Float)
    holdout_mean: Mapped[float] = mapped_column(Float)
    # Per trial, in id order: its id, seed, accuracies and test-set size.
    trials: Mapped[dict] = mapped_column(JSONType)
    # The test part's variances (intervals.Scores), from the per-example correctness when recorded.
    seed_variance: Mapped[float | None] = mapped_column(Float)
    example_variance: Mapped[float] = mapped_column(Float)
    # The task's results_version that last wrote this row: a process keeping the task's points
    # (point_aggregates.read_points) re-reads only rows newer than the version it kept.
    revision: Mapped[int] = mapped_column(default=0, server_default="0")


class Allocation(Base):
    __tablename__ = "allocations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    request: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default=AllocationStatus.queued)
    study_name: Mapped[str] = mapped_column(String(100), unique=True)
    # The allocations of one sweep (POST /allocate with several budgets) share this id.
    sweep_id: Mapped[str | None] = mapped_column(String(36), index=True)
    team: Mapped[str] = mapped_column(String(64), default="local", server_default="local", index=True)
    points_total: Mapped[int]
    # A digest of the stored request and the task version: an identical request finds this
    # allocation's points and answers from them (api.stored_answers).
    request_key: Mapped[str | None] = mapped_column(String(64), index=True)
    recommendation: Mapped[dict | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    # A name a lead gives it to find it again; not part of the request (nor of its request_key).
    label: Mapped[str | None] = mapped_column(String(200))
    # Called when the allocation ends (allocations.webhooks); state: pending, sending, delivered or failed.
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_state: Mapped[str | None] = mapped_column(String(16))
    # When the sender claimed it (pending -> sending): a claim older than any delivery takes is stale.
    callback_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    callback_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    callback_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    task: Mapped[Task] = relationship()
    points: Mapped[list[StudyPoint]] = relationship(
        back_populates="allocation", order_by="StudyPoint.number", cascade="all, delete-orphan"
    )


class StudyPoint(Base):
    """Storage of a Point one allocation's search asked for (an Optuna trial), with its seeds' trials."""

    __tablename__ = "study_points"
    __table_args__ = (UniqueConstraint("allocation_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    allocation_id: Mapped[str] = mapped_column(ForeignKey("allocations.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]  # the Optuna trial number
    method: Mapped[str] = mapped_column(String(40))
    n_weak: Mapped[int]
    n_gold: Mapped[int]
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    told: Mapped[bool] = mapped_column(default=False)  # its value has been reported to the study

    allocation: Mapped[Allocation] = relationship(back_populates="points")
    trials: Mapped[list[Trial]] = relationship(secondary="study_point_trials", order_by="Trial.seed")


class StudyPointTrial(Base):
    """Storage: which trials (one per seed) measure a StudyPoint."""

    __tablename__ = "study_point_trials"

    point_id: Mapped[int] = mapped_column(ForeignKey("study_points.id", ondelete="CASCADE"), primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True, index=True)


class GridStudy(Base):
    """A grid of trials (budgets x weak shares x methods x seeds) asked for together.

    `points` is the plan fixed at creation: each point's label counts and trial ids, and the points
    skipped with their reason. Reading it back never recomputes keys, so a later rebuild of the task
    or change to the search space cannot silently swap the trials a study reports.
    """

    __tablename__ = "grid_studies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    request: Mapped[dict] = mapped_column(JSONType)
    points: Mapped[dict] = mapped_column(JSONType)
    team: Mapped[str] = mapped_column(String(64), default="local", server_default="local", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    task: Mapped[Task] = relationship()


class ApiKey(Base):
    """A team's API key, stored as a digest (app.auth.keys); `shown` is what listings print of it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    shown: Mapped[str] = mapped_column(String(16), index=True)
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TeamWebhookSecret(Base):
    """The key a team's callbacks are signed with (HMAC-SHA256), made on first use."""

    __tablename__ = "team_webhook_secrets"

    team: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
