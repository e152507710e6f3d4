"""Orders: hold a seat, hand the buyer to a provider, confirm what the provider confirms, give seats back.

The top of the payment flows: it builds on `seats` (no overselling), `state` (the order's moves and their log),
`tickets`, and on the enrolment, refund and outbox services, which never call back up here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import case, false, func, or_, select

from integrations.payments import CheckoutRequest, PaymentOutcome, PaymentState, ProviderError

from ..config import settings
from ..extensions import db, keep_loaded_across_commits
from ..locales import DEFAULT_LOCALE
from ..models import DiscountCode, LiveSession, Order, OrderLog, OrderStatus, SessionStatus, get_by_id, utcnow
from . import Conflict, NotFound, ServiceError
from .discounts import DiscountCodeInvalid, Price, price_for, refusal
from .enrollment import request_enrollment
from .outbox.kinds import REFUND
from .outbox.planning import cancel_messages, plan_messages
from .payments import provider as get_provider
from .payments import providers
from .personal_data import record_consents
from .refunds import plan_refund
from .schemas import CheckoutInput, validate
from .seats import lock_order, release_hold, take_discount_use, take_seat, untake_seat
from .state import ConcurrentUpdate, transition
from .text import status_label
from .tickets import ticket_token, ticket_url

log = logging.getLogger(__name__)

# The hold outlives the provider's checkout page by this much, so a payment made in the page's last
# second still finds its seat when the webhook arrives.
HOLD_GRACE = timedelta(minutes=2)
CHECKOUT_PAGE_MARGIN = timedelta(minutes=1)


# The purposes the buyer agreed to, and the page (or API path) they agreed on.
Consents = tuple[tuple[str, ...], str] | None


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


@dataclass(frozen=True)
class CheckoutStarted:
    order: Order
    checkout_url: str


# -- checkout ----------------------------------------------------------------------------------------


def client_hash(address: str | None) -> str | None:
    """What the hold limits keep of a buyer's network address: a keyed hash, never the address itself."""
    if not address:
        return None
    key = settings().SECRET_KEY.encode()
    return hmac.new(key, f"client:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def _check_hold_limits(session_id: int, email: str, client: str | None, now: datetime) -> None:
    """Refuse a new hold when this buyer (email) or this client address already holds enough unpaid seats.

    Called after `_take_seat` in the same transaction: the seat's update locks the session row on PostgreSQL
    (SQLite serialises writers), so two checkouts at once count each other's holds and cannot both pass.
    """
    per_buyer = settings().HOLDS_PER_BUYER
    per_client = settings().HOLDS_PER_CLIENT if client else 0
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


@dataclass(frozen=True)
class Buyer:
    name: str
    email: str
    locale: str
    timezone: str | None
    consents: Consents = None  # what the buyer agreed to, and on which page


def _take_seat_and_use(session: LiveSession, code: DiscountCode | None) -> None:
    """A seat, and a use of the code if there is one, in the caller's transaction; else SoldOut or the code's refusal.

    Holds that ran out are given back lazily (without asking the provider) before a buyer is refused either.
    """
    if not take_seat(session.id, only_on_sale=True):
        db.session.rollback()
        if expire_holds(session_id=session.id, ask_provider=False) == 0 or not take_seat(session.id, only_on_sale=True):
            db.session.rollback()
            raise SoldOut(_("Sorry, this session is sold out."))
    if code is None or take_discount_use(code.id, now=utcnow()):
        return
    db.session.rollback()
    if expire_holds(discount_code_id=code.id, ask_provider=False) > 0:
        if take_seat(session.id, only_on_sale=True) and take_discount_use(code.id, now=utcnow()):
            return
        db.session.rollback()
    db.session.refresh(code)
    raise refusal(code, session, utcnow()) or DiscountCodeInvalid(_("This discount code has been used up."))


def _hold_seat(session: LiveSession, buyer: Buyer, provider_name: str, client: str | None, price: Price) -> Order:
    if not session.is_on_sale:
        raise NotOnSale(_("This session is not on sale any more."))
    _take_seat_and_use(session, price.code)
    now = utcnow()
    _check_hold_limits(session.id, buyer.email, client, now)
    order = Order(
        session_id=session.id,
        name=buyer.name,
        email=buyer.email,
        locale=buyer.locale,
        timezone=buyer.timezone,
        amount=price.total,
        currency=price.currency,
        discount_code_id=price.code.id if price.code else None,
        discount_code=price.code.code if price.code else None,
        discount_amount=price.discount,
        holds_discount=price.code is not None,
        provider=provider_name,
        status=OrderStatus.PENDING,
        holds_seat=True,
        hold_expires_at=now + timedelta(minutes=settings().SEAT_HOLD_MINUTES) + HOLD_GRACE,
        token_nonce=secrets.token_hex(16),
        client_hash=client,
    )
    db.session.add(order)
    db.session.flush()
    db.session.add(OrderLog(order_id=order.id, from_status=None, to_status=OrderStatus.PENDING, actor="buyer"))
    if buyer.consents:
        record_consents(order, session, *buyer.consents, now=now)
    db.session.commit()
    return order


def start_checkout(
    session: LiveSession,
    name: Any,
    email: Any,
    provider_name: Any = None,
    client_address: str | None = None,
    *,
    locale: Any = None,
    timezone: Any = None,
    discount_code: Any = None,
    default_locale: str = DEFAULT_LOCALE,
    consents: Any = None,
    consent_source: str = "",
) -> CheckoutStarted:
    """Hold a seat for the buyer and open the provider's hosted checkout for it.

    The buyer's fields are read as sent (`schemas.CheckoutInput`); without `provider_name`, the buyer pays with the
    first method this deployment offers, as the sales page preselects it. `client_address` is the buyer's network
    address (the web layer's `remote_addr`); with the email it bounds how many unpaid seats one buyer can hold at
    once (`HOLDS_PER_BUYER`, `HOLDS_PER_CLIENT`). `locale` is the buyer's language (`default_locale` when left out:
    the request's), in which the provider's page, the ticket page and every email of the order are shown;
    `timezone` the buyer's own zone, shown in the emails next to the session's. `consents` are the optional emails
    the buyer ticked a box for, recorded with the order, its wording and `consent_source` (the page or API path they
    were given on). `discount_code` is the code the buyer entered: the price is the session's less its discount
    (`discounts.price_for`), and a use of it is held with the seat; a seat the code makes free needs no provider.
    """
    raw = {"name": name, "email": email, "provider": provider_name, "locale": locale, "timezone": timezone,
           "consents": consents, "discount_code": discount_code}  # fmt: skip
    checked = validate(CheckoutInput, raw)
    provider_name = checked.provider or next(iter(providers()), "")
    agreed = (tuple(dict.fromkeys(checked.consents)), consent_source) if checked.consents else None
    buyer = Buyer(checked.name, checked.email, checked.locale or default_locale, checked.timezone, agreed)
    price = price_for(session, checked.discount_code, uses=False)
    # The hot path of a flash sale: it commits twice around the provider's call and writes every value it
    # reads back, so nothing needs reloading after a commit.
    with keep_loaded_across_commits():
        return _start_checkout(session, buyer, provider_name, client_hash(client_address), price)


def _start_checkout(
    session: LiveSession, buyer: Buyer, provider_name: str, client: str | None, price: Price
) -> CheckoutStarted:
    if price.total == 0:
        order = _hold_seat(session, buyer, "free", client, price)
        free = PaymentState(f"free-{order.id}", PaymentOutcome.PAID, order.id, 0, order.currency)
        confirm_payment(order, free, actor="free registration")
        db.session.commit()
        return CheckoutStarted(order, ticket_url(order))

    provider = get_provider(provider_name)
    order = _hold_seat(session, buyer, provider_name, client, price)
    request = CheckoutRequest(
        order_id=order.id,
        description=session.title,
        amount=order.amount,
        currency=order.currency,
        email=order.email,
        success_url=ticket_url(order) + "?from=checkout",
        # Stripe and PayPal send a buyer who gives up back here with a plain GET: the landing releases the seat.
        cancel_url=settings().BASE_URL + url_for("storefront.checkout_cancelled", token=ticket_token(order)),
        expires_at=order.hold_expires_at - HOLD_GRACE + CHECKOUT_PAGE_MARGIN,
        idempotency_key=f"checkout-order-{order.id}-{order.token_nonce[:12]}",
        locale=order.locale,
    )
    try:
        result = provider.create_checkout(request)
    except ProviderError as error:
        log.warning("checkout for order %s failed: %s", order.id, error)
        transition(order, OrderStatus.FAILED, actor=provider.name, note=str(error))
        release_hold(order)
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
        transition(order, OrderStatus.PAID, actor=actor, **paid)
    else:
        seat = order.session.status != SessionStatus.CANCELLED and (
            order.holds_seat or take_seat(order.session_id, only_on_sale=False)
        )
        # The code's use, like the seat, is taken again if one is left: its discount was paid for within `max_uses`.
        use = seat and (
            order.discount_code_id is None or order.holds_discount or take_discount_use(order.discount_code_id)
        )
        if not use:
            if seat and not order.holds_seat:
                untake_seat(order.session_id)
            note = (
                _("Paid after its hold expired; no seat left.")
                if not seat
                else _("Paid after its hold expired; the discount code was used up meanwhile.")
            )
            transition(order, OrderStatus.REFUNDED, actor=actor, note=note, **paid)
            plan_refund(order, reason="no_seat_left" if not seat else "discount_used_up")
            cancel_messages(order, notice=REFUND)
            return "refunded_no_seat" if not seat else "refunded_discount_used_up"
        held = {"holds_discount": True} if order.discount_code_id is not None else {}
        transition(
            order, OrderStatus.PAID, actor=actor, note="paid after its hold expired", holds_seat=True, **held, **paid
        )
    request_enrollment(order)
    plan_messages(order)
    return "paid"


def payment_failed(order: Order, actor: str, note: str = "") -> str:
    order = lock_order(order)
    if order.status != OrderStatus.PENDING:
        return "ignored_" + order.status
    transition(order, OrderStatus.FAILED, actor=actor, note=note)
    release_hold(order)
    return "failed"


def checkout_expired(order: Order, actor: str) -> str:
    order = lock_order(order)
    if order.status != OrderStatus.PENDING:
        return "ignored_" + order.status
    transition(order, OrderStatus.EXPIRED, actor=actor)
    release_hold(order)
    return "expired"


def cancel_checkout(order: Order) -> None:
    """The buyer gave up on the payment page: the checkout is closed at the provider and the seat goes back at once.

    A payment the provider took meanwhile is confirmed instead.
    """
    if order.status != OrderStatus.PENDING:
        raise Conflict(_("This order is %(status)s.", status=status_label(order.status)))
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
        transition(order, OrderStatus.CANCELLED, actor="buyer")
        release_hold(order)
    db.session.commit()


# -- expiry and reconciliation --------------------------------------------------------------------------


def expire_holds(
    session_id: int | None = None,
    *,
    discount_code_id: int | None = None,
    ask_provider: bool = True,
    now: datetime | None = None,
    limit: int = 200,
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
    if discount_code_id is not None:
        query = query.where(Order.discount_code_id == discount_code_id)
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
                    transition(locked, OrderStatus.EXPIRED, actor="hold expiry")
                    release_hold(locked)
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
