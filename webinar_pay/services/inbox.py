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

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from integrations.payments import WebhookEvent

from ..extensions import db
from ..models import WebhookInbox, utcnow
from .orders import ConcurrentUpdate
from .payments import providers
from .paypal_checkout import handle_paypal_event
from .webhooks import handle_stripe_event

log = logging.getLogger(__name__)

HANDLERS: dict[str, Callable[[WebhookEvent], str]] = {"stripe": handle_stripe_event, "paypal": handle_paypal_event}
RETRY_CAP = timedelta(hours=1)
BUSY_RETRY = timedelta(seconds=1)
CLAIM_LEASE = timedelta(minutes=5)  # longer than any provider call a handler makes


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
    """Apply waiting webhooks, oldest first, one at a time; returns the outcome per applied event id.

    Any number of workers may run it: a worker takes a row by pushing its `next_attempt_at` a lease ahead
    (a conditional UPDATE, committed), applies it, then deletes it. A worker that dies mid-way leaves the
    row to come due again when the lease ends; applying it again is then a `duplicate`, never a second
    payment. A failure keeps the row with its error and retries it with backoff.
    """
    applied: dict[str, str] = {}
    for _ in range(limit):
        claimed = _claim_next()
        if claimed is None:
            break
        row_id, provider_name, body, attempts = claimed
        try:
            event = providers()[provider_name].read_webhook(body.encode())
            outcome = HANDLERS[provider_name](event)
        except ConcurrentUpdate:
            db.session.rollback()
            _retry_later(row_id, attempts, "the order changed at the same moment", utcnow() + BUSY_RETRY)
            continue
        except Exception as error:
            db.session.rollback()
            log.exception("webhook %s (%s) could not be applied", row_id, provider_name)
            _retry_later(row_id, attempts + 1, f"{type(error).__name__}: {error}", _backoff(attempts + 1))
            continue
        db.session.execute(delete(WebhookInbox).where(WebhookInbox.id == row_id))
        db.session.commit()
        applied[event.event_id] = outcome
    return applied


def _claim_next() -> tuple[int, str, str, int] | None:
    """The oldest due row, taken for one lease; None when nothing is due."""
    while True:
        now = utcnow()
        query = (
            select(WebhookInbox.id, WebhookInbox.provider, WebhookInbox.body, WebhookInbox.attempts)
            .where(WebhookInbox.next_attempt_at <= now)
            .order_by(WebhookInbox.id)
            .limit(1)
        )
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = db.session.execute(query).first()
        if row is None:
            db.session.rollback()
            return None
        taken = db.session.execute(
            update(WebhookInbox)
            .where(WebhookInbox.id == row.id, WebhookInbox.next_attempt_at <= now)
            .values(next_attempt_at=now + CLAIM_LEASE)
        ).rowcount
        db.session.commit()
        if taken == 1:
            return tuple(row)
        # another worker took it between our read and our update (SQLite): look again


def _backoff(attempts: int) -> datetime:
    base = timedelta(seconds=current_app.config["WEBHOOK_RETRY_BASE_SECONDS"])
    return utcnow() + min(base * 2 ** (attempts - 1), RETRY_CAP)


def _retry_later(row_id: int, attempts: int, error: str, when: datetime) -> None:
    db.session.execute(
        update(WebhookInbox)
        .where(WebhookInbox.id == row_id)
        .values(attempts=attempts, last_error=error[:2000], next_attempt_at=when)
    )
    db.session.commit()
