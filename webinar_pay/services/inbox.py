"""The webhook inbox: a verified payment webhook is stored and acknowledged at once, and applied by the worker.

Stripe and PayPal want a fast 2xx and retry anything slower; applying a payment (lock the order, move it,
enrol, plan the emails, perhaps call PayPal to capture) is the slow part. So the webhook view only verifies the
signature and inserts the body here (one row, one commit), and `apply_webhooks` hands each row to the same
handlers that run for any payment event, deleting it once they are done. A crash in between loses nothing:
the row comes back, and `ProviderEvent` (UNIQUE provider + event id) makes the second application a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from integrations.payments import WebhookEvent

from ..config import settings
from ..extensions import db
from ..models import WebhookInbox, utcnow
from .jobs import backoff, claim_due
from .payments import providers
from .paypal_checkout import handle_paypal_event
from .state import ConcurrentUpdate
from .webhooks import handle_stripe_event

log = logging.getLogger(__name__)

HANDLERS: dict[str, Callable[[WebhookEvent], str]] = {"stripe": handle_stripe_event, "paypal": handle_paypal_event}
RETRY_CAP = timedelta(hours=1)
BUSY_RETRY = timedelta(seconds=1)
CLAIM_BATCH = 10


def receive_webhook(provider_name: str, event: WebhookEvent, body: bytes) -> str:
    """Keep a verified webhook for the worker. Returns `queued`, or `duplicate` when it is already waiting."""
    db.session.add(WebhookInbox(provider=provider_name, event_id=event.event_id, body=body.decode()))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    return "queued"


def apply_webhooks(limit: int = 1000) -> dict[str, str]:
    """Apply waiting webhooks, oldest first; returns the outcome per applied event id.

    Any number of workers may run it: a worker takes a few rows by pushing their `next_attempt_at` a lease
    (`WEBHOOK_LEASE_SECONDS`) ahead, in one conditional UPDATE, committed. Before each further row of its batch it
    renews the lease of the rows it still holds, so a slow batch (a PayPal capture per row) is never taken over by
    a second worker, while the rows of a worker that died come due again within one lease. Each applied row is
    deleted in the transaction that keeps its effects; applying one again (after a crash in between) is a
    `duplicate`, never a second payment. A failure keeps the row with its error and backoff.
    """
    lease = timedelta(seconds=settings().WEBHOOK_LEASE_SECONDS)
    applied: dict[str, str] = {}
    for _ in range(max(1, limit // CLAIM_BATCH)):
        claimed, held_until = _claim_due(lease)
        if not claimed:
            break
        for index, (row_id, provider_name, body, attempts) in enumerate(claimed):
            if index:
                held, held_until = _renew([row[0] for row in claimed[index:]], held_until, lease)
                if row_id not in held:  # our lease ran out and another worker has it now
                    continue
            try:
                event = providers()[provider_name].read_webhook(body.encode())
                outcome = HANDLERS[provider_name](event)
                # Gone with the commit that keeps the handler's effects: the row cannot outlive them.
                db.session.execute(delete(WebhookInbox).where(WebhookInbox.id == row_id))
                db.session.commit()
            except ConcurrentUpdate:
                db.session.rollback()
                _retry_later(row_id, attempts, "the order changed at the same moment", utcnow() + BUSY_RETRY)
                continue
            except Exception as error:
                db.session.rollback()
                log.exception("webhook %s (%s) could not be applied", row_id, provider_name)
                _retry_later(row_id, attempts + 1, f"{type(error).__name__}: {error}", _backoff(attempts + 1))
                continue
            applied[event.event_id] = outcome
    return applied


def _claim_due(lease: timedelta) -> tuple[list[tuple[int, str, str, int]], datetime]:
    """Up to CLAIM_BATCH due rows, oldest first, taken until the returned time."""
    now = utcnow()
    claimed = claim_due(
        WebhookInbox,
        due=[WebhookInbox.next_attempt_at <= now],
        claim={"next_attempt_at": now + lease},
        limit=CLAIM_BATCH,
        returning=(WebhookInbox.provider, WebhookInbox.body, WebhookInbox.attempts),
        skip_locked=True,
    )
    return [tuple(row) for row in claimed], now + lease


def _renew(ids: list[int], held_until: datetime, lease: timedelta) -> tuple[set[int], datetime]:
    """Push the lease of the rows we still hold (those still at our `held_until`) a full lease ahead."""
    renewed_until = utcnow() + lease
    held = db.session.scalars(
        update(WebhookInbox)
        .where(WebhookInbox.id.in_(ids), WebhookInbox.next_attempt_at == held_until)
        .values(next_attempt_at=renewed_until)
        .returning(WebhookInbox.id)
    ).all()
    db.session.commit()
    return set(held), renewed_until


def waiting_webhooks() -> list[WebhookInbox]:
    """What the worker has not applied yet, oldest first (an operator's view: `flask --app app webhooks`)."""
    return list(db.session.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))


def retry_webhooks_now() -> int:
    """Make every failed webhook due at once (once what made it fail is fixed); returns how many."""
    count = db.session.execute(
        update(WebhookInbox).where(WebhookInbox.attempts > 0).values(next_attempt_at=utcnow())
    ).rowcount
    db.session.commit()
    return count


def _backoff(attempts: int) -> datetime:
    return utcnow() + backoff(attempts, settings().WEBHOOK_RETRY_BASE_SECONDS, RETRY_CAP.total_seconds())


def _retry_later(row_id: int, attempts: int, error: str, when: datetime) -> None:
    db.session.execute(
        update(WebhookInbox)
        .where(WebhookInbox.id == row_id)
        .values(attempts=attempts, last_error=error[:2000], next_attempt_at=when)
    )
    db.session.commit()
