"""Callbacks: one signed POST to an allocation's `callback_url` when it ends (done or failed).

When. `allocations._finish` notes the ended allocation on its session (`note_ended`); the dispatcher
hears of it only after that transaction commits (app.outbox), as trials are enqueued only
after theirs: a receiver never hears of an end that a rollback undid, and no row lock is held while
it answers. Every path that ends an allocation (an API request answered from stored trials, a sweep,
an advance after a trial) goes through `_finish`, so none can forget to call.

Where it runs, and why there. Whoever ends the allocation only hands over its id and never waits on
the receiver:
- with a broker, `labelmix.deliver_callback` runs on a queue of its own (`callbacks`), in a worker's
  thread pool: neither the trials workers (one per GPU) nor the studies worker that advances every
  team's allocations ever takes one, so slow receivers delay only other callbacks;
- embedded (no broker), a small thread pool of its own (app.dispatch), not the one thread that
  runs trials and study steps.
Every delivery is bounded: at most `MAX_ATTEMPTS` attempts, none starting later than
LABELMIX_CALLBACK_GIVE_UP_AFTER_S (90) after the first, each done within
LABELMIX_CALLBACK_ATTEMPT_DEADLINE_S (15) whatever the receiver does
(callback_targets: a deadline on the whole exchange, not per read). Retries are tenacity's
(exponential backoff with jitter) inside that one task, so the same code delivers in both modes:
connection errors, timeouts, 5xx and 429 are retried; any other answer outside 2xx (a 4xx, a
redirect) is final, since asking again would get the same answer. Only public addresses are called
(callback_targets), and a receiver's answer is never stored: its status is (a body would let a
callback read an internal page back).

Once, then at least once. `deliver` claims the delivery with one conditional UPDATE (pending ->
sending, stamping `callback_claimed_at`) and only the process whose UPDATE matched sends: two that
both saw the end (an advance run twice, a redelivered message) cannot both call. The row ends
`delivered` or `failed`, with the attempts made and the last error. A process killed mid-delivery
leaves `sending`: once its claim is older than any delivery can take (`stale_claim_after_s`), the
sweep (`reclaim_stale`) puts it back to pending and sends it again, so the receiver may hear of one
end twice and dedupes on X-Labelmix-Delivery (docs/api.md, "Callbacks"). A pending one whose message was
lost (the broker was down at the end, the embedded service stopped first) is sent again by
`undelivered`'s callers.

What is signed (docs/api.md, "Callbacks"): the header X-Labelmix-Signature is `sha256=` and the hex
HMAC-SHA256, keyed with the team's secret (its hex text, as UTF-8 bytes), of the attempt's
X-Labelmix-Timestamp (unix seconds), a dot, and the raw body. The timestamp lets a receiver refuse
old replays; each attempt is signed afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, object_session
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from app import outbox
from app.allocations.callback_targets import checked_client
from app.config import get_settings
from app.db.base import utcnow
from app.db.models import Allocation, AllocationStatus, TeamWebhookSecret
from app.db.session import session_scope

log = logging.getLogger(__name__)

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
ENDED = (AllocationStatus.done, AllocationStatus.failed)

MAX_ATTEMPTS = 5
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # per read / connect, within the attempt's deadline
FIRST_WAIT_S, MAX_WAIT_S = 1.0, 30.0  # then 2, 4, 8 s..., each plus up to a second of jitter
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Labelmix-Signature", "X-Labelmix-Timestamp"
ERROR_CHARS = 300  # of an error of our own (never a receiver's body)



class ReceiverBusy(Exception):
    """A 5xx or 429: the receiver may take it later; tried again."""


class ReceiverRefused(Exception):
    """Any other answer outside 2xx: final."""


# --- after commit: hand the delivery over --------------------------------------------------------


def note_ended(allocation: Allocation) -> None:
    """Called where an allocation ends: its callback is dispatched once the transaction commits (a
    lost hand-over stays pending, for `undelivered`'s callers)."""
    session = object_session(allocation)
    if allocation.callback_state != PENDING or session is None:
        return
    outbox.send_after_commit(session, "enqueue_callback", allocation.id)


def undelivered(session: Session, older_than_s: float = 0) -> list[str]:
    """Ended allocations whose callback is still pending (its hand-over was lost), ended before now - older_than_s."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    return list(session.scalars(
        select(Allocation.id).where(Allocation.callback_state == PENDING, Allocation.status.in_(ENDED),
                                    Allocation.updated_at <= cutoff)
    ))


def reclaim_stale(session: Session, older_than_s: float | None = None) -> list[str]:
    """Put back to pending the callbacks whose sender died mid-delivery (claimed more than older_than_s,
    by default stale_claim_after_s(), ago and still sending); their ids, for the caller to hand over again."""
    cutoff = utcnow() - timedelta(seconds=stale_claim_after_s() if older_than_s is None else older_than_s)
    stale = (Allocation.callback_state == SENDING) & (
        (Allocation.callback_claimed_at <= cutoff) | Allocation.callback_claimed_at.is_(None)
    )
    # One conditional UPDATE: a sweep running beside this one gets back none of the rows this one took.
    reclaimed = list(session.scalars(
        update(Allocation).where(stale)
        .values(callback_state=PENDING, updated_at=Allocation.updated_at)
        .returning(Allocation.id)
        .execution_options(synchronize_session=False)
    ))
    if reclaimed:
        log.warning("callbacks left sending by a process that stopped, sent again: %s", ", ".join(reclaimed))
    return reclaimed


# --- the team's secret ---------------------------------------------------------------------------


def team_secret(session: Session, team: str) -> TeamWebhookSecret:
    """The team's signing secret, made on first use (two first uses at once agree on one)."""
    row = session.get(TeamWebhookSecret, team)
    if row is not None:
        return row
    try:
        with session.begin_nested():  # a concurrent first use may insert it first: then read theirs
            row = TeamWebhookSecret(team=team, secret=secrets.token_hex(32), created_at=utcnow())
            session.add(row)
    except IntegrityError:
        row = session.scalars(select(TeamWebhookSecret).where(TeamWebhookSecret.team == team)).one()
    return row


def rotate_secret(session: Session, team: str) -> TeamWebhookSecret:
    """A new secret for the team; callbacks signed from now on use it (one being retried included)."""
    row = team_secret(session, team)
    row.secret, row.created_at = secrets.token_hex(32), utcnow()
    session.flush()
    return row


# --- the request ---------------------------------------------------------------------------------


def body(allocation: Allocation) -> bytes:
    """What the receiver is told: which allocation ended, how, and when (`recommendation` when done,
    `error` when failed; the other is null)."""
    ended_at = allocation.updated_at
    return json.dumps({
        "event": "allocation.ended",
        "allocation_id": allocation.id,
        "sweep_id": allocation.sweep_id,
        "task": allocation.task.shown_name,
        "label": allocation.label,
        "status": allocation.status,
        "recommendation": allocation.recommendation if allocation.status == AllocationStatus.done else None,
        "error": allocation.error if allocation.status == AllocationStatus.failed else None,
        "ended_at": ended_at.isoformat(),
    }, separators=(",", ":")).encode()


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The X-Labelmix-Signature value: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def stale_claim_after_s() -> float:
    """Longer than any delivery can take (no attempt starts past the give-up time, stop_before_delay,
    and each ends within its deadline): a claim this old belongs to a process that died mid-delivery."""
    settings = get_settings()
    return 2 * (settings.callback_give_up_after_s + settings.callback_attempt_deadline_s)


def _post_once(url: str, secret: str, raw_body: bytes, allocation_id: str) -> int:
    """One attempt, within the attempt deadline; the status only (the body is never read)."""
    timestamp = str(int(time.time()))
    settings = get_settings()
    with checked_client(settings.callback_allow_networks, settings.callback_attempt_deadline_s, TIMEOUT) as client:
        with client.stream("POST", url, content=raw_body, headers={
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, raw_body),
            "X-Labelmix-Delivery": allocation_id,  # the same on every attempt: a receiver can drop repeats
        }) as response:
            status = response.status_code
    if status == 429 or status >= 500:
        raise ReceiverBusy(f"HTTP {status}")
    if not 200 <= status < 300:
        raise ReceiverRefused(f"HTTP {status}")
    return status


def _retrying() -> Retrying:
    return Retrying(
        stop=stop_after_attempt(MAX_ATTEMPTS) | stop_before_delay(get_settings().callback_give_up_after_s),
        wait=wait_exponential_jitter(initial=FIRST_WAIT_S, max=MAX_WAIT_S, jitter=1.0),
        retry=retry_if_exception_type((httpx.TransportError, ReceiverBusy)),
        reraise=True,  # the last attempt's own error is what the row keeps
    )


def send(url: str, secret: str, raw_body: bytes, allocation_id: str) -> tuple[int, str | None]:
    """POST the body, retried with backoff: (attempts made, None when delivered or the last error)."""
    attempts = 0
    try:
        for attempt in _retrying():
            with attempt:
                attempts = attempt.retry_state.attempt_number
                _post_once(url, secret, raw_body, allocation_id)
    except Exception as exc:  # whatever it was, the row must end failed and say why, not stay sending
        return attempts, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
    return attempts, None


# --- one delivery --------------------------------------------------------------------------------


def _claim(session: Session, allocation_id: str) -> bool:
    """pending -> sending, for an ended allocation; True for the one process whose UPDATE matched."""
    claimed = session.execute(
        update(Allocation)
        .where(Allocation.id == allocation_id, Allocation.callback_state == PENDING, Allocation.status.in_(ENDED))
        # Bookkeeping, not a change to the allocation: updated_at stays its end (the body's ended_at).
        .values(callback_state=SENDING, callback_claimed_at=utcnow(), updated_at=Allocation.updated_at)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def deliver(allocation_id: str) -> str | None:
    """Claim and send the allocation's callback; its final state, or None when it was not ours to send."""
    with session_scope() as session:
        if not _claim(session, allocation_id):
            return None
        allocation = session.scalars(
            select(Allocation).options(joinedload(Allocation.task)).where(Allocation.id == allocation_id)
        ).one()
        url, raw_body = allocation.callback_url, body(allocation)
        secret = team_secret(session, allocation.team).secret
    # Committed: the claim holds, and no transaction stays open while the receiver answers.
    attempts, error = send(url, secret, raw_body, allocation_id)
    state = DELIVERED if error is None else FAILED
    with session_scope() as session:
        session.execute(
            update(Allocation).where(Allocation.id == allocation_id)
            .values(callback_state=state, callback_attempts=attempts, callback_error=error,
                    updated_at=Allocation.updated_at)
            .execution_options(synchronize_session=False)
        )
    log_at = logging.INFO if error is None else logging.WARNING
    log.log(log_at, "callback of allocation %s %s after %d attempt(s)%s", allocation_id, state, attempts,
            f": {error}" if error else "")
    return state
