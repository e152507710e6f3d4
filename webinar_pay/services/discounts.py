"""Discount codes: creators make and delete them; checkout asks what a code takes off a session's price.

The price is always computed here, on the server. A code's uses are taken and given back by `seats` (a conditional
UPDATE within `max_uses`, in the transaction that holds the seat); this module only says whether a code applies now
and, when it does not, why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..limits import MAX_DISCOUNT_CODES
from ..models import Creator, DiscountCode, LiveSession, get_by_id, utcnow
from . import NotFound, ServiceError, ValidationError
from .schemas import DiscountCodeInput, discount_code_text, read
from .timezones import NonexistentLocalTime, local_to_utc


class DiscountCodeInvalid(ServiceError):
    """The code a buyer entered cannot be used for this session now; the message says why."""

    code = "discount_code_invalid"
    http_status = 422

    def __init__(self, message: str):
        super().__init__(message, fields={"discount_code": message})


@dataclass(frozen=True)
class Price:
    """What a buyer pays for a seat: the session's price, less the code's discount."""

    price: int
    currency: str
    code: DiscountCode | None = None
    discount: int = 0

    @property
    def total(self) -> int:
        return self.price - self.discount


def discount_for(code: DiscountCode, price: int) -> int:
    """What `code` takes off `price` (minor units): a percentage rounded half up, or an amount, never below zero."""
    if code.percent_off is not None:
        return min((price * code.percent_off + 50) // 100, price)
    return min(code.amount_off or 0, price)


def unknown_code() -> DiscountCodeInvalid:
    return DiscountCodeInvalid(_("This discount code does not exist."))


def refusal(
    code: DiscountCode | None, session: LiveSession, now: datetime, *, uses: bool = True
) -> DiscountCodeInvalid | None:
    """Why `code` cannot be used for `session` at `now`, or None when it can (without `uses`: uses left or not)."""
    if code is None or code.deleted_at is not None or code.creator_id != session.creator_id:
        return unknown_code()
    if session.is_free:
        return DiscountCodeInvalid(_("This session is free: no discount code is needed."))
    if (code.session_id is not None and code.session_id != session.id) or (
        code.amount_off is not None and code.currency != session.currency
    ):
        return DiscountCodeInvalid(_("This discount code does not apply to this session."))
    if code.starts_at is not None and now < code.starts_at:
        return DiscountCodeInvalid(_("This discount code is not valid yet."))
    if code.expires_at is not None and now >= code.expires_at:
        return DiscountCodeInvalid(_("This discount code has expired."))
    if uses and code.max_uses is not None and code.uses >= code.max_uses:
        return DiscountCodeInvalid(_("This discount code has been used up."))
    return None


def find_code(creator_id: int, text: str) -> DiscountCode | None:
    """The creator's live code spelt `text` in any case, or None (a badly shaped text is no code)."""
    try:
        normalized = discount_code_text(text)
    except ValueError:
        return None
    return db.session.scalar(
        select(DiscountCode).where(
            DiscountCode.creator_id == creator_id, DiscountCode.code == normalized, DiscountCode.deleted_at.is_(None)
        )
    )


def price_for(session: LiveSession, code_text: str | None, *, uses: bool = True) -> Price:
    """The seat's price for a buyer who entered `code_text` (None or blank: no code); an unusable code raises
    `DiscountCodeInvalid`. The use is not taken here: checkout takes it with the seat, and so asks without `uses`
    (the hold finds whether one is left, after giving back those of holds that ran out)."""
    if not code_text or not code_text.strip():
        return Price(session.price, session.currency)
    code = find_code(session.creator_id, code_text)
    problem = refusal(code, session, utcnow(), uses=uses)
    if problem is not None:
        raise problem
    return Price(session.price, session.currency, code, discount_for(code, session.price))


# -- the creator's codes ----------------------------------------------------------------------------------------------


def creator_codes(creator: Creator) -> list[DiscountCode]:
    """The creator's codes (deleted ones left out), newest first."""
    return list(
        db.session.scalars(
            select(DiscountCode)
            .where(DiscountCode.creator_id == creator.id, DiscountCode.deleted_at.is_(None))
            .order_by(DiscountCode.id.desc())
        )
    )


def creator_code(creator: Creator, code_id: int, *, deleted: bool = False) -> DiscountCode:
    """One of the creator's codes (with `deleted`, also one deleted already); another creator's is not found."""
    code = get_by_id(DiscountCode, code_id)
    if code is None or code.creator_id != creator.id or (code.deleted_at is not None and not deleted):
        raise NotFound(_("No such discount code."))
    return code


def _instant(value: datetime | None, zone: str) -> datetime:
    """An aware instant as it is; a wall-clock time in the creator's zone."""
    if value is None or value.tzinfo is not None:
        return value
    return local_to_utc(value, zone)


def create_code(creator: Creator, raw: Mapping[str, Any]) -> DiscountCode:
    """A new code from JSON values (the API's body, or the dashboard's form made into one)."""
    values, errors = read(DiscountCodeInput, raw)
    session = None
    if values.session_id is not None:
        session = get_by_id(LiveSession, values.session_id)
        if session is None or session.creator_id != creator.id:
            errors.setdefault("session_id", _("No such session."))
            session = None
    if "percent_off" not in errors and "amount_off" not in errors:
        if (values.percent_off is None) == (values.amount_off is None):
            message = _("Give either a percentage or an amount off, not both.")
            if values.percent_off is None:
                message = _("Give a percentage or an amount off.")
            errors.setdefault("percent_off", message)
            errors.setdefault("amount_off", message)
    currency = None
    if values.amount_off is not None and "currency" not in errors:
        currency = values.currency or (session.currency if session else None)
        if currency is None:
            errors["currency"] = _("Choose the currency of the amount off.")
        elif session is not None and currency != session.currency:
            errors["currency"] = _("The session is sold in %(currency)s.", currency=session.currency)
    starts_at = expires_at = None
    for name in ("starts_at", "expires_at"):
        try:
            instant = _instant(getattr(values, name), creator.timezone)
        except NonexistentLocalTime:
            message = _("This time does not exist in %(zone)s: the clocks change then.", zone=creator.timezone)
            errors.setdefault(name, message)
            continue
        if name == "starts_at":
            starts_at = instant
        else:
            expires_at = instant
    if starts_at and expires_at and expires_at <= starts_at and "expires_at" not in errors:
        errors["expires_at"] = _("The end must come after the start.")
    code_text = getattr(values, "code", None)
    if code_text and "code" not in errors and find_code(creator.id, code_text) is not None:
        errors["code"] = _("You already have this code.")
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    count = db.session.scalar(
        select(func.count()).where(DiscountCode.creator_id == creator.id, DiscountCode.deleted_at.is_(None))
    )
    if count >= MAX_DISCOUNT_CODES:
        raise ValidationError(
            _("You have %(n)d discount codes, the most one account may have: delete some first.", n=count)
        )
    code = DiscountCode(
        creator_id=creator.id,
        session_id=values.session_id,
        code=code_text,
        percent_off=values.percent_off,
        amount_off=values.amount_off,
        currency=currency,
        max_uses=values.max_uses,
        uses=0,
        starts_at=starts_at,
        expires_at=expires_at,
    )
    db.session.add(code)
    try:
        db.session.commit()
    except IntegrityError:  # the same code created at the same instant
        db.session.rollback()
        raise ValidationError(
            _("Please correct the marked fields."), fields={"code": _("You already have this code.")}
        ) from None
    return code


def delete_code(code: DiscountCode) -> None:
    """No new order can use the code; the orders that did keep it (and their discount). Deleting twice is once."""
    if code.deleted_at is None:
        code.deleted_at = utcnow()
        db.session.commit()
