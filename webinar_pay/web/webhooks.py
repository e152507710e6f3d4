"""Provider webhooks. Verified on the raw body, recorded once, acknowledged fast."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from integrations.payments import WebhookSignatureError

from ..extensions import csrf, db
from ..services.orders import ConcurrentUpdate
from ..services.payments import providers
from ..services.webhooks import handle_payment_event
from . import error_response

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)
log = logging.getLogger(__name__)


@bp.post("/stripe")
def stripe_webhook():
    provider = providers().get("stripe")
    if provider is None:
        return error_response("not_configured", "Stripe is not configured on this server.", 404)
    try:
        event = provider.parse_webhook(request.get_data(), request.headers)
    except WebhookSignatureError as error:
        log.warning("rejected a Stripe webhook: %s", error)
        return error_response("invalid_signature", "The Stripe-Signature header does not match this body.", 400)
    try:
        outcome = handle_payment_event("stripe", event)
    except ConcurrentUpdate:
        db.session.rollback()
        return error_response("busy", "The order changed at the same moment; please retry.", 503)
    return jsonify(received=True, outcome=outcome)
