"""Which payment providers this deployment offers, built once per app from its configuration."""

from __future__ import annotations

from flask import current_app

from integrations.payments import PaymentProvider
from integrations.payments.sandbox import SandboxProvider
from integrations.payments.stripe import StripeProvider

from . import ValidationError


def build_providers(config: dict) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] = {}
    if config["STRIPE_SECRET_KEY"]:
        providers["stripe"] = StripeProvider(
            config["STRIPE_SECRET_KEY"],
            config["STRIPE_WEBHOOK_SECRET"],
            config["STRIPE_API_BASE"],
            max_network_retries=config.get("STRIPE_MAX_NETWORK_RETRIES", 2),
        )
    if is_demo_mode(config):
        providers["sandbox"] = SandboxProvider(config["BASE_URL"] + "/sandbox/pay")
    return providers


def is_demo_mode(config: dict) -> bool:
    """No payment keys at all: the sandbox stands in, and every page says so."""
    return not (config["STRIPE_SECRET_KEY"] or config["PAYPAL_CLIENT_ID"])


def providers() -> dict[str, PaymentProvider]:
    return current_app.extensions["webinar_pay.providers"]


def provider(name: str) -> PaymentProvider:
    try:
        return providers()[name]
    except KeyError:
        raise ValidationError(
            f"payment provider {name!r} is not available",
            fields={"provider": f"Choose one of: {', '.join(providers())}."},
        ) from None
