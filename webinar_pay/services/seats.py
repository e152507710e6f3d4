"""Seats: take one, give one back, lock an order. The low layer the checkout, refund and expiry flows build on.

Seats are counted in `LiveSession.seats_taken`, changed only by conditional UPDATEs: taking one is
`seats_taken < capacity` in one statement, so that concurrent buyers can never oversell, on SQLite (writers are
serialised) and on PostgreSQL (the row lock makes the second writer re-check the condition). A CHECK constraint
on the table says the same a second time. The caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import LiveSession, Order, SessionStatus, utcnow


def take_seat(session_id: int, *, only_on_sale: bool) -> bool:
    """One seat of the session, if one is free (and, with `only_on_sale`, while it is published and ahead)."""
    conditions = [LiveSession.id == session_id, LiveSession.seats_taken < LiveSession.capacity]
    if only_on_sale:
        conditions += [LiveSession.status == SessionStatus.PUBLISHED, LiveSession.starts_at > utcnow()]
    result = db.session.execute(
        update(LiveSession)
        .where(*conditions)
        .values(seats_taken=LiveSession.seats_taken + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def give_seat_back(order: Order) -> None:
    """The order's seat goes back to the session, once: `holds_seat` is flipped by a conditional update first."""
    result = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.holds_seat.is_(True))
        .values(holds_seat=False)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        db.session.execute(
            update(LiveSession)
            .where(LiveSession.id == order.session_id)
            .values(seats_taken=LiveSession.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )
    set_committed_value(order, "holds_seat", False)


def lock_order(order: Order) -> Order:
    """Re-read the order under a row lock (PostgreSQL); SQLite serialises writers by itself."""
    return db.session.execute(
        select(Order).where(Order.id == order.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
