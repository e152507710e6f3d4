"""State changes: one way for orders, enrolments, outbox messages, refunds and sessions to change status.

A move is checked against the model's table of legal moves (`models.*_TRANSITIONS`) and written with one
conditional UPDATE (`WHERE id = … AND status = <the status we read>`, plus an optional fence such as the attempt
or claim a worker holds), so a concurrent change is reported (`ConcurrentUpdate`) instead of being overwritten.
An order's move also appends its `OrderLog` row. The caller owns the transaction and commits.

This is the lowest layer of the services: it imports no other service.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, insert, update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import (
    ENROLLMENT_TRANSITIONS,
    ORDER_TRANSITIONS,
    OUTBOX_TRANSITIONS,
    REFUND_TRANSITIONS,
    SESSION_TRANSITIONS,
    Enrollment,
    EnrollmentStatus,
    LiveSession,
    Order,
    OrderLog,
    OrderStatus,
    OutboxMessage,
    OutboxStatus,
    Refund,
    RefundStatus,
    SessionStatus,
    utcnow,
)


class IllegalTransition(Exception):
    """A move the model's table does not allow: a bug in the caller, never a silent no-op."""


class ConcurrentUpdate(Exception):
    """Another transaction changed the row first (or took over the fence); retry from fresh state."""


# Per model: its status enum, its legal moves, and the name used in messages.
MACHINES: dict[type, tuple[type[StrEnum], Mapping[Any, set[Any]], str]] = {
    Order: (OrderStatus, ORDER_TRANSITIONS, "order"),
    Enrollment: (EnrollmentStatus, ENROLLMENT_TRANSITIONS, "enrollment"),
    OutboxMessage: (OutboxStatus, OUTBOX_TRANSITIONS, "outbox message"),
    Refund: (RefundStatus, REFUND_TRANSITIONS, "refund"),
    LiveSession: (SessionStatus, SESSION_TRANSITIONS, "session"),
}


def _leaving(row: Any, current: StrEnum) -> dict[str, Any]:
    """What a row drops when it leaves a state: an order's client hash only serves the hold limits, while pending."""
    if isinstance(row, Order) and current == OrderStatus.PENDING:
        return {"client_hash": None}
    return {}


def transition(
    row: Any,
    to: StrEnum,
    *,
    actor: str | None = None,
    note: str = "",
    fence: Mapping[str, Any] | None = None,
    **values: Any,
) -> None:
    """Move `row` to `to`, writing `values` with it, in one conditional UPDATE.

    `fence` names columns that must still hold the given values (a worker's attempt, a dispatcher's claim): the
    move happens only while the row is still the caller's. `values` are plain values (no SQL expressions): the
    row is updated in memory as written, without a second UPDATE at the next flush. Orders need `actor` (and may
    take a `note`): their move is logged. Raises `IllegalTransition` or `ConcurrentUpdate`.
    """
    model = type(row)
    status, moves, name = MACHINES[model]
    current = status(row.status)
    if to not in moves[current]:
        raise IllegalTransition(f"{name} {row.id}: {current} -> {to} is not allowed")
    if model is Order and not actor:
        raise ValueError("an order's move needs an actor for its log")
    values = {**_leaving(row, current), **values, "updated_at": utcnow()}
    conditions: list[ColumnElement[bool]] = [model.id == row.id, model.status == current]
    for column, expected in (fence or {}).items():
        attribute = getattr(model, column)
        conditions.append(attribute.is_(None) if expected is None else attribute == expected)
    result = db.session.execute(
        update(model).where(*conditions).values(status=to, **values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(f"{name} {row.id} changed while moving {current} -> {to}")
    # Already written by the UPDATE above: recorded as loaded, so that the flush does not write them again.
    set_committed_value(row, "status", to)
    for column, value in values.items():
        set_committed_value(row, column, value)
    if model is Order:
        db.session.add(OrderLog(order_id=row.id, from_status=current, to_status=to, actor=actor, note=note))


def transition_all(
    model: type,
    where: list[ColumnElement[bool]],
    current: StrEnum,
    to: StrEnum,
    *,
    actor: str | None = None,
    note: str = "",
    **values: Any,
) -> list[int]:
    """Move every row of `model` that is in `current` and matches `where` to `to`, in one UPDATE; returns their ids.

    For moves of a whole session's rows at once (a cancelled session), so that the work per statement does not grow
    with the number of attendees. Orders get their log rows in one more (batched) INSERT. The caller commits.
    """
    status, moves, name = MACHINES[model]
    if to not in moves[status(current)]:
        raise IllegalTransition(f"{name}s: {current} -> {to} is not allowed")
    if model is Order and not actor:
        raise ValueError("an order's move needs an actor for its log")
    ids = list(
        db.session.scalars(
            update(model)
            .where(model.status == current, *where)
            .values(status=to, updated_at=utcnow(), **values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )
    if model is Order and ids:
        db.session.execute(
            insert(OrderLog),
            [{"order_id": i, "from_status": current, "to_status": to, "actor": actor, "note": note} for i in ids],
        )
    return ids
