"""JSON API v1. Creators authenticate with a bearer token; checkout and an order's own view are public."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, g, jsonify, request
from flask_babel import gettext as _

from ..config import settings
from ..extensions import csrf, limiter
from ..limits import MAX_TOKEN_LENGTH
from ..locales import DEFAULT_LOCALE, SUPPORTED_LOCALES
from ..services import ValidationError
from ..services.creators import creator_for_api_token
from ..services.discounts import create_code, creator_code, creator_codes, delete_code
from ..services.orders import creator_order, start_checkout
from ..services.personal_data import export_attendee
from ..services.privacy import erase_attendee
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
from .openapi import OPENAPI
from .responses import (
    checkout_started_json,
    discount_code_json,
    discount_codes_json,
    erasure_json,
    order_json,
    orders_json,
    refund_made_json,
    session_json,
    sessions_json,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


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


@bp.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)


@bp.get("/sessions")
@token_required
def list_sessions():
    return jsonify(sessions_json(creator_sessions(g.creator)))


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
    return jsonify(orders_json(session.orders))


@bp.post("/sessions/<int:session_id>/checkout")
@limiter.limit(lambda: settings().RATELIMIT_CHECKOUT)
def checkout(session_id: int):
    body = _json_body()
    session = public_session(session_id)
    started = start_checkout(
        session, body.get("name"), body.get("email"), body.get("provider"), client_address=request.remote_addr,
        locale=body.get("locale"), timezone=body.get("timezone"), discount_code=body.get("discount_code"),
        default_locale=request.accept_languages.best_match(SUPPORTED_LOCALES) or DEFAULT_LOCALE,
        consents=body.get("consents"), consent_source=f"API {request.path}",
    )  # fmt: skip
    order = started.order
    return jsonify(checkout_started_json(order, started.checkout_url, ticket_token(order), ticket_url(order))), 201


@bp.get("/discount-codes")
@token_required
def list_discount_codes():
    return jsonify(discount_codes_json(creator_codes(g.creator)))


@bp.post("/discount-codes")
@token_required
def create_discount_code():
    return jsonify(discount_code_json(create_code(g.creator, _json_body()))), 201


@bp.delete("/discount-codes/<int:code_id>")
@token_required
def delete_discount_code(code_id: int):
    delete_code(creator_code(g.creator, code_id, deleted=True))
    return "", 204


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


@bp.post("/orders/<int:order_id>/refund")
@token_required
def refund(order_id: int):
    body = _json_body(optional=True)
    order = creator_order(g.creator.id, order_id)
    made, created = refund_order(
        order, body.get("amount"), actor=f"creator {g.creator.email} (API)", key=request.headers.get("Idempotency-Key")
    )
    order = creator_order(g.creator.id, order_id)
    return jsonify(refund_made_json(made, order)), 201 if created else 200


@bp.get("/orders/<int:order_id>/export")
@token_required
def export_order(order_id: int):
    response = jsonify(export_attendee(creator_order(g.creator.id, order_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/orders/<int:order_id>/erase")
@token_required
def erase_order(order_id: int):
    order = creator_order(g.creator.id, order_id)
    erased = erase_attendee(order, actor=f"creator {g.creator.email} (API)")
    return jsonify(erasure_json(creator_order(g.creator.id, order_id), erased))
