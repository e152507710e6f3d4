"""Orders: hold a seat, hand the buyer to a provider, confirm what the provider confirms, give seats back.

Seats are counted in `LiveSession.seats_taken`, changed only by one conditional UPDATE
(`seats_taken < capacity`) so that concurrent buyers can never oversell, on SQLite (writers are
serialised) and on PostgreSQL (the row lock makes the second writer re-check the condition).
A CHECK constraint on the table says the same a second time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import case, false, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from integrations.payments import CheckoutRequest, PaymentOutcome, PaymentState, ProviderError

from ..extensions import db, keep_loaded_across_commits
from ..models import (
    ORDER_TRANSITIONS,
    Enrollment,
    EnrollmentStatus,
    LiveSession,
    Order,
    OrderLog,
    OrderStatus,
    Platform,
    SessionStatus,
    get_by_id,
    utcnow,
)
from . import Conflict, NotFound, ServiceError
from .outbox import REFUND, cancel_messages, plan_messages
from .payments import provider as get_provider
from .payments import providers
from .schemas import CheckoutInput, validate

log = logging.getLogger(__name__)

# The hold outlives the provider's checkout page by this much, so a payment made in the page's last
# second still finds its seat when the webhook arrives.
HOLD_GRACE = timedelta(minutes=2)
CHECKOUT_PAGE_MARGIN = timedelta(minutes=1)


class SoldOut(ServiceError):
    code = "sold_out"
    http_status = 409


class NotOnSale(ServiceError):
    code = "not_on_sale"
    http_status = 409


class ProviderUnavailable(ServiceError):
    code = "provider_unavailable"
    http_status = 503


class TooManyHolds(ServiceError):
    code = "too_many_holds"
    http_status = 429


class IllegalTransition(Exception):
    pass


class ConcurrentUpdate(Exception):
    """Another request changed the order first; the caller should retry from fresh state."""


@dataclass(frozen=True)
class CheckoutStarted:
    order: Order
    checkout_url: str


# -- ticket and join tokens ------------------------------------------------------------------------
# A token is `<order id>.<HMAC-SHA256(SECRET_KEY, purpose, order id, nonce)>`: nothing secret is stored, any later
# email can rebuild the link, and a new nonce revokes every old link. The ticket token opens the ticket page (and
# the order in the API), which can cancel the seat; the join token only leads into the session, so attendees
# may pass it around (a shared calendar, a forwarded reminder) without handing over their ticket.

TICKET = "ticket"
JOIN = "join"
_TOKEN = re.compile(r"([1-9][0-9]{0,9})\.([A-Za-z0-9_-]{32})")


def _signature(purpose: str, order_id: int, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"{purpose}:{order_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def _token(purpose: str, order: Order) -> str:
    return f"{order.id}.{_signature(purpose, order.id, order.token_nonce)}"


def _order_for_token(purpose: str, token: object) -> Order | None:
    """Any string (or anything else) gives the order whose token it is for `purpose`, or None."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        return None
    order = get_by_id(Order, int(match[1]))
    if order is None or not hmac.compare_digest(match[2], _signature(purpose, order.id, order.token_nonce)):
        return None
    return order


def ticket_token(order: Order) -> str:
    return _token(TICKET, order)


def order_for_ticket_token(token: object) -> Order | None:
    return _order_for_token(TICKET, token)


def join_token(order: Order) -> str:
    return _token(JOIN, order)


def order_for_join_token(token: object) -> Order | None:
    return _order_for_token(JOIN, token)


def ticket_url(order: Order) -> str:
    return current_app.config["BASE_URL"] + url_for("storefront.ticket", token=ticket_token(order))


def join_link(order: Order) -> str:
    """The attendee's personal way in, on our domain: it leads to the platform only while the order is paid."""
    return current_app.config["BASE_URL"] + url_for("storefront.join", token=join_token(order))


def join_destination(order: Order) -> str | None:
    """Where the personal join link leads right now, or None when it must not lead anywhere."""
    enrollment = order.enrollment
    if order.status != OrderStatus.PAID or enrollment is None or enrollment.status != EnrollmentStatus.ENROLLED:
        return None
    if order.session.platform == Platform.YOUTUBE:
        from .enrollment import youtube_stream_url  # the enrolment service builds on this module

        return youtube_stream_url(order.session)
    return enrollment.join_url


# -- state changes ---------------------------------------------------------------------------------


def transition_order(order: Order, to: OrderStatus, actor: str, note: str = "", **values) -> None:
    """The one way an order changes state: legal moves only, atomic against concurrent writers."""
    current = OrderStatus(order.status)
    if to not in ORDER_TRANSITIONS[current]:
        raise IllegalTransition(f"order {order.id}: {current} -> {to} is not allowed")
    if current == OrderStatus.PENDING:
        values = {"client_hash": None, **values}  # only the hold limits need it, and only while the seat is held
    now = utcnow()
    result = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == current)
        .values(status=to, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(f"order {order.id} changed while moving {current} -> {to}")
    # Already written by the UPDATE above: recorded as loaded, so that the flush does not write them again.
    set_committed_value(order, "status", to)
    for name, value in values.items():
        set_committed_value(order, name, value)
    db.session.add(OrderLog(order_id=order.id, from_status=current, to_status=to, actor=actor, note=note))


def _take_seat(session_id: int, *, only_on_sale: bool) -> bool:
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


# -- checkout ----------------------------------------------------------------------------------------


def client_hash(address: str | None) -> str | None:
    """What the hold limits keep of a buyer's network address: a keyed hash, never the address itself."""
    if not address:
        return None
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"client:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def _check_hold_limits(session_id: int, email: str, client: str | None, now: datetime) -> None:
    """Refuse a new hold when this buyer (email) or this client address already holds enough unpaid seats.

    Called after `_take_seat` in the same transaction: the seat's update locks the session row on PostgreSQL
    (SQLite serialises writers), so two checkouts at once count each other's holds and cannot both pass.
    """
    per_buyer = current_app.config["HOLDS_PER_BUYER"]
    per_client = current_app.config["HOLDS_PER_CLIENT"] if client else 0
    if per_buyer <= 0 and per_client <= 0:
        return
    by_buyer = Order.email == email
    by_client = Order.client_hash == client if client else false()
    buyer_holds, client_holds, first_end = db.session.execute(
        select(
            func.count(case((by_buyer, 1))),
            func.count(case((by_client, 1))),
            func.min(Order.hold_expires_at),
        ).where(
            Order.session_id == session_id,
            Order.status == OrderStatus.PENDING,
            Order.holds_seat.is_(True),
            Order.hold_expires_at > now,
            or_(by_buyer, by_client),
        )
    ).one()
    buyer_full, client_full = 0 < per_buyer <= buyer_holds, 0 < per_client <= client_holds
    if not (buyer_full or client_full):
        return
    db.session.rollback()
    minutes = max(math.ceil(((first_end or now) - now).total_seconds() / 60), 1)
    if buyer_full:
        held = ngettext(
            "You already hold %(num)d unpaid seat for this session.",
            "You already hold %(num)d unpaid seats for this session.",
            buyer_holds,
        )
    else:  # an office or a household behind one address, or one person with many email addresses
        held = ngettext(
            "%(num)d unpaid seat for this session is already held from your network.",
            "%(num)d unpaid seats for this session are already held from your network.",
            client_holds,
        )
    wait = ngettext(
        "Finish or cancel a checkout you started, or try again in %(num)d minute, when a held seat is released.",
        "Finish or cancel a checkout you started, or try again in %(num)d minutes, when a held seat is released.",
        minutes,
    )
    raise TooManyHolds(f"{held} {wait}")


def _hold_seat(session: LiveSession, name: str, email: str, provider_name: str, client: str | None) -> Order:
    if not session.is_on_sale:
        raise NotOnSale(_("This session is not on sale any more."))
    if not _take_seat(session.id, only_on_sale=True):
        db.session.rollback()
        if expire_holds(session_id=session.id, ask_provider=False) == 0 or not _take_seat(
            session.id, only_on_sale=True
        ):
            db.session.rollback()
            raise SoldOut(_("Sorry, this session is sold out."))
    now = utcnow()
    _check_hold_limits(session.id, email, client, now)
    order = Order(
        session_id=session.id,
        name=name,
        email=email,
        amount=session.price,
        currency=session.currency,
        provider=provider_name,
        status=OrderStatus.PENDING,
        holds_seat=True,
        hold_expires_at=now + timedelta(minutes=current_app.config["SEAT_HOLD_MINUTES"]) + HOLD_GRACE,
        token_nonce=secrets.token_hex(16),
        client_hash=client,
    )
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderLog(order_id=order.id, from_status=None, to_status=OrderStatus.PENDING, actor="buyer"))
    db.session.commit()
    return order


def start_checkout(
    session: LiveSession, name: Any, email: Any, provider_name: Any = None, client_address: str | None = None
) -> CheckoutStarted:
    """Hold a seat for the buyer and open the provider's hosted checkout for it.

    The buyer's fields are read as sent (`schemas.CheckoutInput`); without `provider_name`, the buyer pays with the
    first method this deployment offers, as the sales page preselects it. `client_address` is the buyer's network
    address (the web layer's `remote_addr`); with the email it bounds how many unpaid seats one buyer can hold at
    once (`HOLDS_PER_BUYER`, `HOLDS_PER_CLIENT`).
    """
    buyer = validate(CheckoutInput, {"name": name, "email": email, "provider": provider_name})
    provider_name = buyer.provider or next(iter(providers()), "")
    # The hot path of a flash sale: it commits twice around the provider's call and writes every value it
    # reads back, so nothing needs reloading after a commit.
    with keep_loaded_across_commits():
        return _start_checkout(session, buyer.name, buyer.email, provider_name, client_hash(client_address))


def _start_checkout(
    session: LiveSession, name: str, email: str, provider_name: str, client: str | None
) -> CheckoutStarted:
    if session.is_free:
        order = _hold_seat(session, name, email, "free", client)
        free = PaymentState(f"free-{order.id}", PaymentOutcome.PAID, order.id, 0, order.currency)
        confirm_payment(order, free, actor="free registration")
        db.session.commit()
        return CheckoutStarted(order, ticket_url(order))

    provider = get_provider(provider_name)
    order = _hold_seat(session, name, email, provider_name, client)
    request = CheckoutRequest(
        order_id=order.id,
        description=session.title,
        amount=order.amount,
        currency=order.currency,
        email=order.email,
        success_url=ticket_url(order) + "?from=checkout",
        # Stripe and PayPal send a buyer who gives up back here with a plain GET: the landing releases the seat.
        cancel_url=current_app.config["BASE_URL"] + url_for("storefront.checkout_cancelled", token=ticket_token(order)),
        expires_at=order.hold_expires_at - HOLD_GRACE + CHECKOUT_PAGE_MARGIN,
        idempotency_key=f"checkout-order-{order.id}-{order.token_nonce[:12]}",
    )
    try:
        result = provider.create_checkout(request)
    except ProviderError as error:
        log.warning("checkout for order %s failed: %s", order.id, error)
        transition_order(order, OrderStatus.FAILED, actor=provider.name, note=str(error))
        give_seat_back(order)
        db.session.commit()
        raise ProviderUnavailable(_("The payment provider could not be reached. Please try again.")) from error
    order.provider_ref = result.provider_ref
    db.session.commit()
    return CheckoutStarted(order, result.redirect_url)


# -- confirmation --------------------------------------------------------------------------------------


def confirm_payment(order: Order, payment: PaymentState, actor: str) -> str:
    """Make the order paid because its provider said so. Idempotent; the caller commits.

    Returns what happened, in a word, for the event record.
    """
    if payment.outcome != PaymentOutcome.PAID:
        raise ValueError("confirm_payment needs a paid state")
    order = lock_order(order)
    if payment.amount != order.amount or (payment.currency or "").upper() != order.currency:
        log.error(
            "order %s: provider reports %s %s, expected %s %s: not confirmed",
            order.id, payment.amount, payment.currency, order.amount, order.currency,
        )  # fmt: skip
        return "amount_mismatch"
    if order.status in {OrderStatus.PAID, OrderStatus.DISPUTED, OrderStatus.REFUNDED}:
        return "already_" + order.status
    paid = {"paid_at": utcnow(), "payment_ref": payment.payment_ref}
    if order.status == OrderStatus.PENDING and order.holds_seat:
        transition_order(order, OrderStatus.PAID, actor, **paid)
    else:
        seat = order.session.status != SessionStatus.CANCELLED and (
            order.holds_seat or _take_seat(order.session_id, only_on_sale=False)
        )
        if not seat:
            transition_order(
                order, OrderStatus.REFUNDED, actor, note=_("Paid after its hold expired; no seat left."), **paid
            )
            from .refunds import plan_refund  # the refunds service builds on this module

            plan_refund(order, reason="no_seat_left")
            cancel_messages(order, notice=REFUND)
            return "refunded_no_seat"
        transition_order(order, OrderStatus.PAID, actor, note="paid after its hold expired", holds_seat=True, **paid)
    request_enrollment(order)
    plan_messages(order)
    return "paid"


def request_enrollment(order: Order) -> Enrollment:
    """Give the attendee their way in. A plain link is immediate; platforms are enrolled by the worker."""
    session = order.session
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.order_id == order.id))
    if enrollment is None:
        enrollment = Enrollment(order_id=order.id, status=EnrollmentStatus.PENDING, next_attempt_at=utcnow())
        db.session.add(enrollment)
    if session.platform == Platform.LINK:
        enrollment.status = EnrollmentStatus.ENROLLED
        enrollment.join_url = session.join_link
        enrollment.next_attempt_at = None
    else:
        from .enrollment import enroll_at_once  # YouTube and the demo platform need no worker

        enroll_at_once(order, session, enrollment)
    return enrollment


def payment_failed(order: Order, actor: str, note: str = "") -> str:
    order = lock_order(order)
    if order.status != OrderStatus.PENDING:
        return "ignored_" + order.status
    transition_order(order, OrderStatus.FAILED, actor, note=note)
    give_seat_back(order)
    return "failed"


def checkout_expired(order: Order, actor: str) -> str:
    order = lock_order(order)
    if order.status != OrderStatus.PENDING:
        return "ignored_" + order.status
    transition_order(order, OrderStatus.EXPIRED, actor)
    give_seat_back(order)
    return "expired"


def cancel_checkout(order: Order) -> None:
    """The buyer gave up on the payment page: the checkout is closed at the provider and the seat goes back at once.

    A payment the provider took meanwhile is confirmed instead.
    """
    if order.status != OrderStatus.PENDING:
        raise Conflict(_("This order is %(status)s.", status=order.status))
    if order.provider_ref:
        try:
            state = get_provider(order.provider).cancel_checkout(order.provider_ref)
        except ProviderError as error:
            log.warning("could not close the checkout of order %s at %s: %s", order.id, order.provider, error)
            raise ProviderUnavailable(
                _("The payment provider could not be reached to close your payment page. Please try again.")
            ) from error
        if state.outcome == PaymentOutcome.PAID:
            confirm_payment(order, state, actor=f"{order.provider} reconcile")
            db.session.commit()
            return
    order = lock_order(order)
    if order.status == OrderStatus.PENDING:
        transition_order(order, OrderStatus.CANCELLED, actor="buyer")
        give_seat_back(order)
    db.session.commit()


# -- expiry and reconciliation --------------------------------------------------------------------------


def expire_holds(
    session_id: int | None = None, *, ask_provider: bool = True, now: datetime | None = None, limit: int = 200
) -> int:
    """Give back the seats of pending orders whose hold ran out; returns how many seats came back.

    With `ask_provider` (the scheduler tick) each checkout is first closed at the provider, which
    also tells us about a payment whose webhook has not arrived: that order is confirmed instead.
    Without it (a sold-out buyer waiting), holds past their expiry are released on our word alone;
    a payment that still comes in later takes the late-payment path.
    """
    now = now or utcnow()
    query = select(Order).where(Order.status == OrderStatus.PENDING, Order.hold_expires_at < now)
    if session_id is not None:
        query = query.where(Order.session_id == session_id)
    orders = db.session.scalars(query.order_by(Order.hold_expires_at).limit(limit)).all()
    released = 0
    for order in orders:
        state = None
        if ask_provider and order.provider_ref:
            try:
                state = get_provider(order.provider).cancel_checkout(order.provider_ref)
            except (ProviderError, ServiceError) as error:
                log.warning("could not reconcile order %s with %s: %s", order.id, order.provider, error)
                continue
        try:
            if state is not None and state.outcome == PaymentOutcome.PAID:
                confirm_payment(order, state, actor=f"{order.provider} reconcile")
            else:
                locked = lock_order(order)
                if locked.status == OrderStatus.PENDING:
                    transition_order(locked, OrderStatus.EXPIRED, actor="hold expiry")
                    give_seat_back(locked)
                    released += 1
            db.session.commit()
        except ConcurrentUpdate:
            db.session.rollback()
    return released


# -- reading -----------------------------------------------------------------------------------------------


def creator_order(creator_id: int, order_id: int) -> Order:
    order = get_by_id(Order, order_id)
    if order is None or order.session.creator_id != creator_id:
        raise NotFound(_("No such order."))
    return order
