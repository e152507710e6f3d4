"""Which payment providers this deployment offers, built once per app from its configuration."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from integrations.payments import PaymentProvider
from integrations.payments.paypal import PayPalProvider
from integrations.payments.sandbox import SandboxProvider
from integrations.payments.stripe import StripeProvider

from ..config import Settings, is_production
from . import ValidationError


def build_providers(config: Settings) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] = {}
    if config.STRIPE_SECRET_KEY:
        providers["stripe"] = StripeProvider(
            config.STRIPE_SECRET_KEY,
            config.STRIPE_WEBHOOK_SECRET,
            config.STRIPE_API_BASE,
            max_network_retries=config.STRIPE_MAX_NETWORK_RETRIES,
            timeout=provider_timeout(config),
        )
    if config.PAYPAL_CLIENT_ID and config.PAYPAL_CLIENT_SECRET:
        providers["paypal"] = PayPalProvider(
            config.PAYPAL_CLIENT_ID,
            config.PAYPAL_CLIENT_SECRET,
            api_base=config.PAYPAL_API_BASE,
            webhook_id=config.PAYPAL_WEBHOOK_ID,
            webhook_verify=config.PAYPAL_WEBHOOK_VERIFY,
            cert_hosts=list(config.PAYPAL_CERT_HOSTS),
            timeout=provider_timeout(config),
        )
    if not providers:
        providers["sandbox"] = SandboxProvider(config.BASE_URL + "/sandbox/pay")
    return providers


def provider_timeout(config: Settings) -> tuple[float, float]:
    """How long a call to a provider may take: (to connect, to read the answer), as `requests` takes it."""
    return config.PROVIDER_CONNECT_TIMEOUT_SECONDS, config.PROVIDER_READ_TIMEOUT_SECONDS


def is_demo_mode(providers: dict[str, PaymentProvider]) -> bool:
    """No real provider configured: the sandbox stands in, and every page says so."""
    return "sandbox" in providers


def check_demo_mode(config: Settings, providers: dict[str, PaymentProvider]) -> None:
    """Production never falls into demo mode by accident: without payment keys it needs `DEMO_MODE=1`.

    In demo mode the sandbox marks orders paid without money and the dev mailbox shows every attendee's emails,
    with their ticket and join links, to any visitor.
    """
    if is_demo_mode(providers) and is_production(config) and not config.DEMO_MODE:
        raise RuntimeError(
            "No payment provider is configured, so the app would run in demo mode (a test payment page that marks "
            "orders paid without money, and every attendee's emails readable by anyone at /dev/mailbox/). Set "
            "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, or PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET and "
            "PAYPAL_WEBHOOK_ID, for real payments; or set DEMO_MODE=1 to run a public demo on purpose."
        )


def in_demo_mode() -> bool:
    """Whether the running app is in demo mode (computed from its providers; `DEMO_MODE` only permits it)."""
    return is_demo_mode(providers())


def providers() -> dict[str, PaymentProvider]:
    return current_app.extensions["webinar_pay.providers"]


def provider(name: str) -> PaymentProvider:
    try:
        return providers()[name]
    except KeyError:
        choices = ", ".join(providers())
        raise ValidationError(
            _("This payment method is not available."),
            fields={"provider": _("Choose one of: %(choices)s.", choices=choices)},
        ) from None
