"""Our PayPal client against the fake PayPal: amounts, idempotency, tokens, errors and webhook signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from integrations.payments import CheckoutRequest, PaymentOutcome, ProviderError, WebhookSignatureError
from integrations.payments.paypal import PayPalProvider, from_paypal_value, to_paypal_value


@pytest.fixture
def make_provider(fake_paypal):
    def factory(**overrides) -> PayPalProvider:
        settings = {
            "api_base": fake_paypal.base_url,
            "webhook_id": fake_paypal.webhook_id,
            "cert_hosts": ["127.0.0.1"],
            "timeout": 5,
        }
        settings.update(overrides)
        client_id = settings.pop("client_id", fake_paypal.client_id)
        return PayPalProvider(client_id, fake_paypal.client_secret, **settings)

    return factory


@pytest.fixture
def provider(make_provider) -> PayPalProvider:
    return make_provider()


def checkout_request(order_id: int = 7, amount: int = 2500, currency: str = "EUR", key: str = "") -> CheckoutRequest:
    return CheckoutRequest(
        order_id=order_id,
        description="Watercolour basics",
        amount=amount,
        currency=currency,
        email="bo@example.com",
        success_url="http://127.0.0.1:5000/t/7.abc?from=checkout",
        cancel_url="http://127.0.0.1:5000/s/1",
        expires_at=datetime.now(UTC) + timedelta(minutes=31),
        idempotency_key=key or f"checkout-order-{order_id}-{datetime.now(UTC).timestamp()}",
    )


@pytest.mark.parametrize(
    ("minor", "currency", "value"),
    [(2500, "EUR", "25.00"), (5, "USD", "0.05"), (3000, "JPY", "3000"), (150000, "HUF", "1500")],
)
def test_amounts_use_the_currency_exponent(minor, currency, value):
    assert to_paypal_value(minor, currency) == value
    assert from_paypal_value(value, currency) == minor


def test_an_amount_paypal_cannot_express_is_refused():
    with pytest.raises(ProviderError, match="whole units"):
        to_paypal_value(150050, "HUF")


def test_create_is_idempotent_per_request_id(provider, fake_paypal):
    request = checkout_request(order_id=11, amount=3000, currency="JPY")
    first = provider.create_checkout(request)
    again = provider.create_checkout(request)
    assert first == again
    matching = [o for o in fake_paypal.orders.values() if o["purchase_units"][0]["custom_id"] == "11"]
    assert [o["id"] for o in matching] == [first.provider_ref]
    assert matching[0]["purchase_units"][0]["amount"] == {"currency_code": "JPY", "value": "3000"}
    assert fake_paypal.request_ids.count(request.idempotency_key) == 2
    assert provider.get_payment(first.provider_ref).outcome == PaymentOutcome.OPEN


def test_capture_twice_is_one_payment(provider, fake_paypal):
    result = provider.create_checkout(checkout_request(order_id=12))
    with pytest.raises(ProviderError, match="ORDER_NOT_APPROVED"):
        provider.capture(result.provider_ref)
    fake_paypal.approve(result.provider_ref)
    first = provider.capture(result.provider_ref)
    second = provider.capture(result.provider_ref)  # PayPal answers 422 ORDER_ALREADY_CAPTURED
    assert first == second
    assert (first.outcome, first.order_id, first.amount, first.currency) == (PaymentOutcome.PAID, 12, 2500, "EUR")
    assert first.payment_ref in fake_paypal.captures
    assert provider.cancel_checkout(result.provider_ref) == first


def test_refund_is_idempotent_and_refuses_a_second_full_refund(provider, fake_paypal):
    result = provider.create_checkout(checkout_request(order_id=13, amount=1999, currency="USD"))
    fake_paypal.approve(result.provider_ref)
    capture_id = provider.capture(result.provider_ref).payment_ref
    refund = provider.refund(capture_id, 1999, "USD", idempotency_key="refund-13-a")
    assert refund.status == "succeeded"
    assert provider.refund(capture_id, 1999, "USD", idempotency_key="refund-13-a") == refund
    assert fake_paypal.refunds[refund.provider_refund_id]["amount"] == {"currency_code": "USD", "value": "19.99"}
    with pytest.raises(ProviderError, match="CAPTURE_FULLY_REFUNDED") as error:
        provider.refund(capture_id, 1999, "USD", idempotency_key="refund-13-b")
    assert not error.value.transient


def test_token_is_cached_and_renewed_when_refused(provider, fake_paypal):
    before = fake_paypal.token_requests
    result = provider.create_checkout(checkout_request(order_id=14))
    provider.get_payment(result.provider_ref)
    assert fake_paypal.token_requests == before + 1
    fake_paypal.expire_tokens()
    assert provider.get_payment(result.provider_ref).provider_ref == result.provider_ref
    assert fake_paypal.token_requests == before + 2


def test_errors_say_whether_a_retry_may_help(provider, make_provider, fake_paypal):
    fake_paypal.fail_next.append((500, "INTERNAL_SERVER_ERROR", "An internal server error occurred."))
    with pytest.raises(ProviderError) as error:
        provider.create_checkout(checkout_request(order_id=15))
    assert error.value.transient
    with pytest.raises(ProviderError, match="invalid_client") as error:
        make_provider(client_id="wrong").create_checkout(checkout_request(order_id=15))
    assert not error.value.transient
    with pytest.raises(ProviderError, match="CURRENCY_NOT_SUPPORTED"):
        provider.create_checkout(checkout_request(order_id=15, currency="KES"))
    with pytest.raises(ProviderError, match="not a PayPal id"):
        provider.get_payment("../../v1/oauth2/token")


def test_offline_verification_fetches_the_certificate_once(make_provider, fake_paypal):
    provider = make_provider()
    result = provider.create_checkout(checkout_request(order_id=16))
    _back, approved = fake_paypal.approve(result.provider_ref)
    downloads = fake_paypal.certificate_downloads
    event = provider.parse_webhook(approved.body, approved.headers)
    assert (event.event_id, event.type) == (approved.id, "CHECKOUT.ORDER.APPROVED")
    assert (event.payment.provider_ref, event.payment.order_id) == (result.provider_ref, 16)
    provider.parse_webhook(approved.body, {k.lower(): v for k, v in approved.headers.items()})
    assert fake_paypal.certificate_downloads == downloads + 1
    with pytest.raises(WebhookSignatureError, match="does not match"):
        provider.parse_webhook(fake_paypal.forged(approved).body, fake_paypal.forged(approved).headers)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        make_provider(webhook_id="ANOTHER-WEBHOOK").parse_webhook(approved.body, approved.headers)


@pytest.mark.parametrize(
    ("cert_url", "message"),
    [
        ("https://api.paypal.com.evil.example/certs/CERT-1", "not trusted"),
        ("http://paypal.test/certs/CERT-1", "over https"),
    ],
)
def test_certificates_come_only_from_trusted_hosts_over_https(make_provider, fake_paypal, cert_url, message):
    provider = make_provider(cert_hosts=["api.paypal.com", "paypal.test"])
    signed = fake_paypal.sign(fake_paypal.webhook("PAYMENT.CAPTURE.PENDING", "capture", {}).body, cert_url=cert_url)
    with pytest.raises(WebhookSignatureError, match=message):
        provider.parse_webhook(signed.body, signed.headers)


def test_postback_verification_asks_paypal(make_provider, fake_paypal):
    provider = make_provider(webhook_verify="postback", cert_hosts=[])
    result = provider.create_checkout(checkout_request(order_id=17))
    _back, approved = fake_paypal.approve(result.provider_ref)
    calls = len(fake_paypal.requests)
    assert provider.parse_webhook(approved.body, approved.headers).payment.order_id == 17
    assert fake_paypal.requests[calls].path == "/v1/notifications/verify-webhook-signature"
    forged = fake_paypal.forged(approved)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        provider.parse_webhook(forged.body, forged.headers)


def test_without_a_webhook_id_nothing_is_trusted(make_provider, fake_paypal):
    signed = fake_paypal.webhook("PAYMENT.CAPTURE.PENDING", "capture", {})
    with pytest.raises(WebhookSignatureError, match="PAYPAL_WEBHOOK_ID"):
        make_provider(webhook_id="").parse_webhook(signed.body, signed.headers)


def test_the_fake_speaks_paypals_errors(fake_paypal):
    """Raw HTTP, no client of ours: the error bodies our client relies on."""
    token = requests.post(
        fake_paypal.base_url + "/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(fake_paypal.client_id, fake_paypal.client_secret),
        timeout=10,
    ).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    headers = {"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/json"}

    def post(path: str, body: dict, **extra) -> requests.Response:
        return requests.post(fake_paypal.base_url + path, json=body, headers={**headers, **extra}, timeout=10)

    experience = {"return_url": "http://127.0.0.1:5000/back", "cancel_url": "http://127.0.0.1:5000/cancel"}

    def order_body(value: str, currency: str, invoice: str) -> dict:
        unit = {"custom_id": "99", "invoice_id": invoice, "amount": {"currency_code": currency, "value": value}}
        return {"intent": "CAPTURE", "purchase_units": [unit],
                "payment_source": {"paypal": {"experience_context": experience}}}  # fmt: skip

    assert requests.get(fake_paypal.base_url + "/v2/checkout/orders/X", timeout=10).status_code == 401
    decimals = post("/v2/checkout/orders", order_body("3000.00", "JPY", "99-jpy"))
    assert decimals.status_code == 422 and decimals.json()["details"][0]["issue"] == "DECIMALS_NOT_SUPPORTED"
    created = post("/v2/checkout/orders", order_body("10.00", "EUR", "99-a"), **{"PayPal-Request-Id": "req-99"})
    replayed = post("/v2/checkout/orders", order_body("10.00", "EUR", "99-a"), **{"PayPal-Request-Id": "req-99"})
    assert (created.status_code, replayed.status_code) == (201, 200)
    assert created.json()["id"] == replayed.json()["id"]
    duplicate = post("/v2/checkout/orders", order_body("10.00", "EUR", "99-a"))
    assert duplicate.status_code == 422 and duplicate.json()["details"][0]["issue"] == "DUPLICATE_INVOICE_ID"

    order_id = created.json()["id"]
    fake_paypal.approve(order_id)
    first = post(f"/v2/checkout/orders/{order_id}/capture", {})
    second = post(f"/v2/checkout/orders/{order_id}/capture", {})
    assert first.status_code == 201 and first.json()["status"] == "COMPLETED"
    assert second.status_code == 422 and second.json()["name"] == "UNPROCESSABLE_ENTITY"
    assert second.json()["details"][0]["issue"] == "ORDER_ALREADY_CAPTURED"
