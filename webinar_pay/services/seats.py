"""Seats and discount uses: take one, give one back, lock an order. The low layer the checkout, refund and expiry
flows build on.

Seats are counted in `LiveSession.seats_taken`, changed only by conditional UPDATEs: taking one is
`seats_taken < capacity` in one statement, so that concurrent buyers can never oversell, on SQLite (writers are
serialised) and on PostgreSQL (the row lock makes the second writer re-check the condition). A CHECK constraint
on the table says the same a second time. A discount code's uses (`DiscountCode.uses` within `max_uses`) are
counted the same way, taken after the seat in the same transaction (the session's row, then the code's: one order of
locks everywhere), and given back with it while the order is unpaid. The caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import DiscountCode, LiveSession, Order, SessionStatus, utcnow


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


def untake_seat(session_id: int) -> None:
    """The seat `take_seat` just took in this transaction goes back (what it was taken for cannot happen)."""
    db.session.execute(
        update(LiveSession)
        .where(LiveSession.id == session_id)
        .values(seats_taken=LiveSession.seats_taken - 1)
        .execution_options(synchronize_session=False)
    )


def _give_back(order: Order, flag: InstrumentedAttribute, counter: InstrumentedAttribute, row_id: int) -> None:
    """What the order holds (`flag`: a seat, a discount use) goes back to its `counter`, once: the flag is flipped
    by a conditional update first, and only the update that flipped it takes one from the counter."""
    flipped = db.session.execute(
        update(Order)
        .where(Order.id == order.id, flag.is_(True))
        .values({flag: False})
        .execution_options(synchronize_session=False)
    )
    if flipped.rowcount == 1:
        owner = counter.class_
        db.session.execute(
            update(owner)
            .where(owner.id == row_id)
            .values({counter: counter - 1})
            .execution_options(synchronize_session=False)
        )
    set_committed_value(order, flag.key, False)


def give_seat_back(order: Order) -> None:
    """The order's seat goes back to the session, once."""
    _give_back(order, Order.holds_seat, LiveSession.seats_taken, order.session_id)


def take_discount_use(code_id: int, *, now: datetime | None = None) -> bool:
    """One use of the code, if one is left (and, with `now`, while it is valid then and not deleted)."""
    conditions = [
        DiscountCode.id == code_id,
        or_(DiscountCode.max_uses.is_(None), DiscountCode.uses < DiscountCode.max_uses),
    ]
    if now is not None:
        conditions += [
            DiscountCode.deleted_at.is_(None),
            or_(DiscountCode.starts_at.is_(None), DiscountCode.starts_at <= now),
            or_(DiscountCode.expires_at.is_(None), DiscountCode.expires_at > now),
        ]
    result = db.session.execute(
        update(DiscountCode)
        .where(*conditions)
        .values(uses=DiscountCode.uses + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def give_discount_use_back(order: Order) -> None:
    """The order's use of its discount code goes back to the code, once."""
    if order.discount_code_id is not None:
        _give_back(order, Order.holds_discount, DiscountCode.uses, order.discount_code_id)


def release_hold(order: Order) -> None:
    """An unpaid order ended (expired, failed, cancelled): its seat and its discount use go back."""
    give_seat_back(order)
    give_discount_use_back(order)


def lock_order(order: Order) -> Order:
    """Re-read the order under a row lock (PostgreSQL); SQLite serialises writers by itself."""
    return db.session.execute(
        select(Order).where(Order.id == order.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
