"""Work a transaction leaves for the workers, handed over only once it commits.

A service that makes work (an allocation's callback, a task's weak-labeler build) records it here
on its session; the dispatcher (app.dispatch) sends it after the commit, and a rollback drops it, so
a worker never looks for a row that is not there, and never for one that was rolled back. Services
import this module, never the dispatcher: the dispatcher runs the jobs, which call the services, and
the imports run one way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_KEY = "labelmix_outbox"
# The dispatcher's send(method, *args), installed when app.dispatch is imported.
_sender: Callable[..., None] | None = None


def send_after_commit(session: Session, method: str, *args) -> None:
    """Call the dispatcher's `method(*args)` once `session`'s transaction commits (once, even if asked twice)."""
    if _sender is None:
        raise RuntimeError("no dispatcher installed: import app.dispatch before making work in a transaction")
    queued = session.info.setdefault(_KEY, [])
    if (method, args) not in queued:
        queued.append((method, args))


def install(sender: Callable[..., None]) -> None:
    global _sender
    _sender = sender


@event.listens_for(Session, "after_commit")
def _send(session: Session) -> None:
    for method, args in session.info.pop(_KEY, ()):
        try:
            _sender(method, *args)
        except Exception:  # committed already: what was not handed over is found by the recovery sweeps
            log.warning("could not hand over %s%r after commit", method, args, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
