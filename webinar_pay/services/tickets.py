"""Ticket and join tokens, and the attendee's links built on them.

A token is `<order id>.<HMAC-SHA256(SECRET_KEY, purpose, order id, nonce)>`: nothing secret is stored, any later
email can rebuild the link, and a new nonce revokes every old link. The ticket token opens the ticket page (and
the order in the API), which can cancel the seat; the join token only leads into the session, so attendees
may pass it around (a shared calendar, a forwarded reminder) without handing over their ticket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from flask import url_for
from flask_babel import gettext as _

from ..config import settings
from ..models import Order, get_by_id
from . import ServiceError

TICKET = "ticket"
JOIN = "join"
_TOKEN = re.compile(r"([1-9][0-9]{0,9})\.([A-Za-z0-9_-]{32})")


class Erased(ServiceError):
    """A real ticket or join link of an order whose personal data was erased: revoked for good."""

    code = "erased"
    http_status = 410


def _signature(purpose: str, order_id: int, nonce: str) -> str:
    key = settings().SECRET_KEY.encode()
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


def _not_erased(order: Order | None) -> Order | None:
    if order is not None and order.erased_at is not None:
        raise Erased(
            _(
                "This ticket no longer exists: the attendee's personal data was erased, at their request or the "
                "organiser's. Its links open nothing any more. Ask the organiser if you think this is a mistake."
            )
        )
    return order


def ticket_token(order: Order) -> str:
    return _token(TICKET, order)


def order_for_ticket_token(token: object) -> Order | None:
    """The order whose ticket token this is, or None; raises `Erased` (410) for an erased order's real token."""
    return _not_erased(_order_for_token(TICKET, token))


def join_token(order: Order) -> str:
    return _token(JOIN, order)


def order_for_join_token(token: object) -> Order | None:
    """The order whose join token this is, or None; raises `Erased` (410) for an erased order's real token."""
    return _not_erased(_order_for_token(JOIN, token))


def ticket_url(order: Order) -> str:
    return settings().BASE_URL + url_for("storefront.ticket", token=ticket_token(order))


def join_link(order: Order) -> str:
    """The attendee's personal way in, on our domain: it leads to the platform only while the order is paid."""
    return settings().BASE_URL + url_for("storefront.join", token=join_token(order))


def personal_join_url(order: Order) -> str:
    """`join_link` built without a request (`/j/<join token>`), so the worker can use it too."""
    return f"{settings().BASE_URL}/j/{join_token(order)}"
