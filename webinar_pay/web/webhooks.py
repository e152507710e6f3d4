"""Provider webhooks. Verified on the raw body and acknowledged fast: payment events are applied by the worker
(`services.inbox`), Zoom's small ones at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, jsonify, request

from integrations.payments import WebhookSignatureError
from integrations.video import VideoWebhookError, zoom

from ..config import settings
from ..extensions import csrf
from ..services.enrollment import handle_zoom_event
from ..services.inbox import receive_webhook
from ..services.payments import providers
from . import error_response

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)
log = logging.getLogger(__name__)


@bp.post("/stripe")
def stripe_webhook():
    return _payment_webhook("stripe", "Stripe", lambda error: "The Stripe-Signature header does not match this body.")


@bp.post("/paypal")
def paypal_webhook():
    return _payment_webhook("paypal", "PayPal", lambda error: f"The PayPal signature could not be verified: {error}.")


def _payment_webhook(provider_name: str, label: str, refusal: Callable[[Exception], str]):
    """Verify, keep for the worker, answer: nothing slow happens before the provider has its 2xx."""
    provider = providers().get(provider_name)
    if provider is None:
        return error_response("not_configured", f"{label} is not configured on this server.", 404)
    body = request.get_data()
    try:
        event = provider.parse_webhook(body, request.headers)
    except WebhookSignatureError as error:
        log.warning("rejected a %s webhook: %s", label, error)
        return error_response("invalid_signature", refusal(error), 400)
    return jsonify(received=True, outcome=receive_webhook(provider_name, event, body))


@bp.post("/zoom")
def zoom_webhook():
    secret = settings().ZOOM_WEBHOOK_SECRET_TOKEN
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
