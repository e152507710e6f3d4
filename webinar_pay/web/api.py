"""JSON API v1. Creators authenticate with a bearer token; checkout and an order's own view are public."""

from __future__ import annotations

from datetime import datetime
from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request, url_for
from flask_babel import gettext as _

from ..extensions import csrf, limiter
from ..models import LiveSession, Order, Refund
from ..services import ValidationError
from ..services.creators import creator_for_api_token
from ..services.orders import creator_order, start_checkout
from ..services.payments import providers
from ..services.refunds import refund_order
from ..services.sessions import (
    create_session,
    creator_session,
    creator_sessions,
    public_session,
    publish_session,
)
from ..services.sessions import update_session as update_session_service
from ..services.tickets import order_for_ticket_token, ticket_token, ticket_url
from . import error_response
from .openapi import CHECKOUT_PROVIDERS, OPENAPI

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


MAX_TOKEN_LENGTH = 200  # ours are about 50 characters


def _bearer() -> str | None:
    """The bearer token sent, if it can be one of ours: printable ASCII (anything else is simply no token)."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token if token.isascii() and token.isprintable() else None


def _unauthorized(message: str):
    response, status = error_response("unauthorized", message, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="webinar_pay"'
    return response, status


def token_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        token = _bearer()
        creator = creator_for_api_token(token) if token else None
        if creator is None:
            return _unauthorized(_("A valid API token is required."))
        g.creator = creator
        return view(*args, **kwargs)

    return wrapper


def _json_body(optional: bool = False) -> dict:
    """The request's JSON object; with `optional`, an empty body is an empty object."""
    if optional and not request.get_data():
        return {}
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes: no request of ours looks like that
        body = None
    if not isinstance(body, dict):
        raise ValidationError(_("The request body must be a JSON object."))
    return body


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def session_json(session: LiveSession) -> dict:
    return {
        "id": session.id,
        "title": session.title,
        "description": session.description,
        "starts_at": _iso(session.starts_at),
        "timezone": session.timezone,
        "duration_minutes": session.duration_minutes,
        "price": session.price,
        "currency": session.currency,
        "capacity": session.capacity,
        "seats_taken": session.seats_taken,
        "seats_left": session.seats_left,
        "status": session.status,
        "platform": session.platform,
        "zoom_meeting_id": session.zoom_meeting_id,
        "zoom_kind": session.zoom_kind,
        "youtube_url": session.youtube_url,
        "join_link": session.join_link,
        "replay_url": session.replay_url,
        "reminder_offsets_minutes": session.reminder_offsets,
        "cancellation_hours": session.cancellation_hours,
        "public_url": current_app.config["BASE_URL"] + url_for("storefront.session_page", session_id=session.id),
    }


def order_json(order: Order) -> dict:
    enrollment = order.enrollment
    return {
        "id": order.id,
        "session_id": order.session_id,
        "name": order.name,
        "email": order.email,
        "status": order.status,
        "amount": order.amount,
        "currency": order.currency,
        "provider": order.provider,
        "hold_expires_at": _iso(order.hold_expires_at),
        "paid_at": _iso(order.paid_at),
        "enrollment": {"status": enrollment.status, "join_url": enrollment.join_url} if enrollment else None,
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)


@bp.get("/sessions")
@token_required
def list_sessions():
    return jsonify(sessions=[session_json(s) for s in creator_sessions(g.creator)])


@bp.post("/sessions")
@token_required
def create():
    session = create_session(g.creator, _json_body())
    return jsonify(session_json(session)), 201


@bp.get("/sessions/<int:session_id>")
@token_required
def get_session(session_id: int):
    return jsonify(session_json(creator_session(g.creator, session_id)))


@bp.patch("/sessions/<int:session_id>")
@token_required
def update_session(session_id: int):
    session = update_session_service(creator_session(g.creator, session_id), _json_body())
    return jsonify(session_json(session))


@bp.post("/sessions/<int:session_id>/publish")
@token_required
def publish(session_id: int):
    return jsonify(session_json(publish_session(creator_session(g.creator, session_id))))


@bp.get("/sessions/<int:session_id>/orders")
@token_required
def session_orders(session_id: int):
    session = creator_session(g.creator, session_id)
    return jsonify(orders=[order_json(order) for order in session.orders])


@bp.post("/sessions/<int:session_id>/checkout")
@limiter.limit(lambda: current_app.config["RATELIMIT_CHECKOUT"])
def checkout(session_id: int):
    body = _json_body()
    session = public_session(session_id)
    provider = body.get("provider")
    if provider is None:  # as the HTML form does: the first payment method this deployment offers
        provider = next(iter(providers()), "")
    elif provider not in CHECKOUT_PROVIDERS:
        raise ValidationError(
            _("Please correct the marked fields."),
            fields={"provider": _("Choose one of: %(choices)s.", choices=", ".join(providers()))},
        )
    started = start_checkout(
        session, body.get("name", ""), body.get("email", ""), provider, client_address=request.remote_addr
    )
    order = started.order
    return jsonify(
        order_id=order.id,
        status=order.status,
        checkout_url=started.checkout_url,
        hold_expires_at=_iso(order.hold_expires_at),
        access_token=ticket_token(order),
        ticket_url=ticket_url(order),
    ), 201


@bp.get("/orders/<int:order_id>")
def get_order(order_id: int):
    token = _bearer()
    order = order_for_ticket_token(token) if token else None
    if order is None or order.id != order_id:
        creator = creator_for_api_token(token) if token else None
        if creator is None:
            return _unauthorized(_("A creator token or the order's access token is required."))
        order = creator_order(creator.id, order_id)
    return jsonify(order_json(order))


def refund_json(refund: Refund) -> dict:
    return {
        "id": refund.id,
        "order_id": refund.order_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "status": refund.status,
        "provider": refund.provider,
        "provider_refund_id": refund.provider_refund_id,
        "last_error": refund.last_error,
        "created_at": refund.created_at.isoformat().replace("+00:00", "Z"),
    }


@bp.post("/orders/<int:order_id>/refund")
@token_required
def refund(order_id: int):
    body = _json_body(optional=True)
    order = creator_order(g.creator.id, order_id)
    made, created = refund_order(
        order, body.get("amount"), actor=f"creator {g.creator.email} (API)", key=request.headers.get("Idempotency-Key")
    )
    order = creator_order(g.creator.id, order_id)
    return jsonify(refund=refund_json(made), order=order_json(order)), 201 if created else 200
