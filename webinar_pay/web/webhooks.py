"""Provider webhooks. Verified on the raw body, recorded once, acknowledged fast."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from integrations.payments import ProviderError, WebhookSignatureError
from integrations.video import VideoWebhookError, zoom

from ..extensions import csrf, db
from ..services.enrollment import handle_zoom_event
from ..services.orders import ConcurrentUpdate
from ..services.payments import providers
from ..services.paypal_checkout import handle_paypal_event
from ..services.webhooks import handle_stripe_event
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
        outcome = handle_stripe_event(event)
    except ConcurrentUpdate:
        db.session.rollback()
        return error_response("busy", "The order changed at the same moment; please retry.", 503)
    return jsonify(received=True, outcome=outcome)


@bp.post("/zoom")
def zoom_webhook():
    secret = current_app.config["ZOOM_WEBHOOK_SECRET_TOKEN"]
    if not secret:
        return error_response("not_configured", "Zoom webhooks are not configured on this server.", 404)
    body = request.get_data()
    try:
        event = zoom.verify_webhook(secret, body, request.headers)
        if event["event"] == "endpoint.url_validation":
            return jsonify(zoom.url_validation_answer(secret, event))
    except VideoWebhookError as error:
        log.warning("rejected a Zoom webhook: %s", error)
        return error_response("invalid_signature", f"The Zoom webhook was refused: {error}.", 400)
    return jsonify(received=True, outcome=handle_zoom_event(zoom.parse_event(body, event)))


@bp.post("/paypal")
def paypal_webhook():
    provider = providers().get("paypal")
    if provider is None:
        return error_response("not_configured", "PayPal is not configured on this server.", 404)
    try:
        event = provider.parse_webhook(request.get_data(), request.headers)
    except WebhookSignatureError as error:
        log.warning("rejected a PayPal webhook: %s", error)
        return error_response("invalid_signature", f"The PayPal signature could not be verified: {error}.", 400)
    try:
        outcome = handle_paypal_event(event)
    except ConcurrentUpdate:
        db.session.rollback()
        return error_response("busy", "The order changed at the same moment; please retry.", 503)
    except ProviderError as error:
        db.session.rollback()
        return error_response("provider_unavailable", f"PayPal could not be reached: {error}", 503)
    return jsonify(received=True, outcome=outcome)
