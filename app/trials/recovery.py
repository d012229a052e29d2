"""The sweep that keeps work from stranding: what the rows say is owed but no message will bring.

Messages are hints and can be lost: a worker killed after taking a trial's message but before
claiming the row (Redis hides the message for the visibility timeout), a worker killed mid-trial or
between storing a trial and waking its allocations, a broker restarted without persistence, an
advance that failed on a database restart. Each Celery worker runs `sweep` at start-up and every
few seconds (worker/celery_jobs.py); app/jobs.py's recover_job sends what it finds. Every step is a
conditional UPDATE or an idempotent advance, so several workers sweeping at once is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from app.allocations import lifecycle as allocations
from app.config import get_settings
from app.db.base import utcnow
from app.db.models import (
    ACTIVE_TRIAL_STATUSES,
    OPEN_ALLOCATION_STATUSES,
    Allocation,
    StudyPoint,
    StudyPointTrial,
    Trial,
)
from app.trials import cache as trials


@dataclass
class Recovered:
    """What one sweep found; the caller sends the trials and advances the allocations."""

    failed: list[int] = field(default_factory=list)  # silent past their time limit: failed for good
    requeued: list[int] = field(default_factory=list)  # silent within it (worker died): queued again
    resent: list[int] = field(default_factory=list)  # queued, but their message is gone
    to_advance: list[str] = field(default_factory=list)  # allocations no advance message is coming for

    @property
    def to_send(self) -> list[int]:
        return [*self.requeued, *self.resent]


def stalled_allocations(session: Session) -> list[str]:
    """Unfinished allocations with no trial queued or running, quiet for requeue_unclaimed_after_s.

    Only an advance moves such an allocation on, and its message was lost. Quiet: neither it nor
    a trial of its changed lately, so the worker that finished its last trial has had its time to
    send the advance. A second advance would be harmless anyway (it locks the row, finds nothing).
    """
    before = utcnow() - timedelta(seconds=get_settings().requeue_unclaimed_after_s)
    busy_trial = exists().where(
        StudyPoint.allocation_id == Allocation.id,
        StudyPointTrial.point_id == StudyPoint.id,
        Trial.id == StudyPointTrial.trial_id,
        or_(Trial.status.in_(ACTIVE_TRIAL_STATUSES), Trial.finished_at >= before),
    )
    unfinished = Allocation.status.in_(OPEN_ALLOCATION_STATUSES)
    return list(session.scalars(select(Allocation.id).where(unfinished, Allocation.updated_at < before, ~busy_trial)))


def sweep(session: Session, trials_queue_empty: bool) -> Recovered:
    """Fail, requeue and resend the trials, and pick the allocations, that lost their messages or workers.

    `trials_queue_empty`: the broker holds no trial message, so a queued trial's is not merely
    waiting its turn (trials.resend_unclaimed); when unknown, pass False.
    """
    found = Recovered(failed=trials.fail_overdue(session), requeued=trials.requeue_stale(session))
    if trials_queue_empty:
        found.resent = trials.resend_unclaimed(session)
    # A failed trial may decide its point now; requeued ones are something the allocation waits for.
    waiting = {a for trial_id in found.failed for a in allocations.allocations_waiting_on(session, trial_id)}
    found.to_advance = sorted(waiting | set(stalled_allocations(session)))
    return found
