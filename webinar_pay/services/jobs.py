"""What the worker's jobs share: the retry backoff, claiming due rows, a request context, recording an event once.

Every job may run in any number of processes at once, so each takes its rows with a conditional UPDATE (a claim or
a lease) before working on them, and commits it at once. A low layer: it imports no flow.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from flask import current_app, has_request_context
from sqlalchemy import ColumnElement, Row, select, update
from sqlalchemy.exc import IntegrityError

from ..config import settings
from ..extensions import db
from ..models import ProviderEvent

# Past this many doublings every wait is at its cap anyway; the exponent stops here so that a row retried for days
# (the webhook inbox never gives up) cannot overflow the arithmetic.
_MAX_DOUBLINGS = 40


def backoff(attempt: int, base: float, cap: float) -> timedelta:
    """The wait before try `attempt + 1`: `base` seconds after the first attempt, doubling, at most `cap` seconds."""
    return timedelta(seconds=min(base * 2 ** min(max(attempt - 1, 0), _MAX_DOUBLINGS), cap))


def _claim(
    model: type, ids: Sequence[int], due: Sequence[ColumnElement[bool]], claim: Mapping[str, Any], returning: Sequence
) -> list[Row]:
    """Take the rows among `ids` that are still due, in one conditional UPDATE, committed: the first worker's
    UPDATE wins each row, a second finds it no longer due."""
    claimed = db.session.execute(
        update(model)
        .where(model.id.in_(ids), *due)
        .values(**claim)
        .returning(model.id, *returning)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return claimed


def _due_ids(
    model: type, due: Sequence[ColumnElement[bool]], order_by: Sequence, limit: int | None, skip_locked: bool
) -> list[int]:
    query = select(model.id).where(*due).order_by(*(order_by or [model.id])).limit(limit)
    if skip_locked and db.session.get_bind().dialect.name == "postgresql":
        # Rows another worker is claiming right now are passed over, not waited for; the UPDATE follows in this
        # transaction, under the lock.
        return list(db.session.scalars(query.with_for_update(skip_locked=True)))
    ids = list(db.session.scalars(query))
    db.session.commit()  # end the read: the UPDATE then sees what other writers committed since
    return ids


def claim_due(
    model: type,
    *,
    due: Sequence[ColumnElement[bool]],
    claim: Mapping[str, Any],
    order_by: Sequence = (),
    limit: int | None = None,
    returning: Sequence = (),
    skip_locked: bool = False,
) -> list[Row]:
    """Claim a batch: up to `limit` rows of `model` matching `due`, in `order_by` order (default: by id), get the
    `claim` values (a lease, a status, a time) in one conditional UPDATE that checks `due` again, committed.

    Returns `(id, *returning)` of each row this worker got, in that order. `skip_locked` reads the candidates with
    `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent workers take different rows instead of colliding.
    """
    ids = _due_ids(model, due, order_by, limit, skip_locked)
    if not ids:
        db.session.rollback()
        return []
    claimed = {row[0]: row for row in _claim(model, ids, due, claim, returning)}
    return [claimed[row_id] for row_id in ids if row_id in claimed]


def claim_one(model: type, row_id: int, *, due: Sequence[ColumnElement[bool]], claim: Mapping[str, Any]) -> bool:
    """Claim one row if it is still due (one conditional UPDATE, committed); whether this worker got it."""
    return bool(_claim(model, [row_id], due, claim, ()))


def claim_each(
    model: type,
    *,
    due: Sequence[ColumnElement[bool]],
    claim: Mapping[str, Any],
    order_by: Sequence = (),
    limit: int | None = None,
) -> Iterator[int]:
    """The ids of up to `limit` due rows, each claimed (`claim_one`) only when the loop reaches it.

    For jobs that work a row at a time against a slow outside service: a row is leased (and its attempt counted)
    only when its turn comes, so a loop that stops early (the service is unwell) leaves the rest due, untouched.
    """
    for row_id in _due_ids(model, due, order_by, limit, skip_locked=False):
        if claim_one(model, row_id, due=due, claim=claim):
            yield row_id


@contextlib.contextmanager
def worker_context() -> Iterator[None]:
    """Translations and `url_for` need a request (for the language, for the host); the worker has none, so lend it
    one at `BASE_URL`. Inside a request this does nothing."""
    if has_request_context():
        yield
        return
    with current_app.test_request_context("/", base_url=settings().BASE_URL):
        yield


def record_event_once(
    provider: str, event_id: str, event_type: str, payload: Mapping[str, Any]
) -> ProviderEvent | None:
    """Add the provider's event to the transaction, or return None when it was recorded before (a duplicate).

    UNIQUE (provider, event_id) decides, at the flush: a duplicate is rolled back, along with whatever the
    transaction held, and nothing more is done. The caller sets the outcome and commits.
    """
    record = ProviderEvent(
        provider=provider, event_id=event_id, event_type=event_type, payload=json.dumps(dict(payload), default=str)
    )
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    return record
