"""Forged PayPal webhooks cost us no outbound request: cheap checks first, then a bounded certificate cache and
download. Our PayPal client against the fake PayPal, and one delivery over HTTP through the app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from integrations.payments import WebhookSignatureError
from integrations.payments.paypal import MAX_CACHED_CERTIFICATES, PayPalProvider
from tests.fakes.fake_paypal import SignedWebhook


@pytest.fixture
def make_provider(fake_paypal):
    def factory(**overrides) -> PayPalProvider:
        settings = {"api_base": fake_paypal.base_url, "webhook_id": fake_paypal.webhook_id, "cert_hosts": ["127.0.0.1"]}
        return PayPalProvider(fake_paypal.client_id, fake_paypal.client_secret, **{**settings, **overrides})

    return factory


def _pending_capture(fake_paypal, **signing) -> SignedWebhook:
    webhook = fake_paypal.webhook("PAYMENT.CAPTURE.PENDING", "capture", {})
    return fake_paypal.sign(webhook.body, **signing) if signing else webhook


def _with(webhook: SignedWebhook, **headers: str | None) -> dict[str, str]:
    changed = dict(webhook.headers)
    for name, value in headers.items():
        header = name.replace("_", "-").upper()
        if value is None:
            changed.pop(header)
        else:
            changed[header] = value
    return changed


def _outbound(fake_paypal) -> tuple[int, int]:
    """What PayPal has seen from us: certificate downloads, verify-webhook-signature calls."""
    verify = [r for r in fake_paypal.requests if r.path == "/v1/notifications/verify-webhook-signature"]
    return fake_paypal.certificate_downloads, len(verify)


HEADER_FORGERIES = {
    "no transmission id": {"paypal_transmission_id": None},
    "no transmission time": {"paypal_transmission_time": None},
    "no signature": {"paypal_transmission_sig": None},
    "no certificate url": {"paypal_cert_url": None},
    "no auth algo": {"paypal_auth_algo": None},
    "transmission id with a path": {"paypal_transmission_id": "../../v1/oauth2/token"},
    "transmission id too long": {"paypal_transmission_id": "a" * 200},
    "time that is no time": {"paypal_transmission_time": "yesterday"},
    "time without its offset": {"paypal_transmission_time": "2026-05-04T18:30:00"},
    "unsupported algo": {"paypal_auth_algo": "SHA1withRSA"},
    "signature not base64": {"paypal_transmission_sig": "not base64 at all!"},
    "signature far too long": {"paypal_transmission_sig": "QUFB" * 1000},
}


def _certificate_url_forgeries(fake_paypal) -> dict[str, str]:
    return {
        "another api path on the trusted host": f"{fake_paypal.base_url}/v1/oauth2/token",
        "a query string": f"{fake_paypal.cert_url}?again=1",
        "credentials in the url": fake_paypal.cert_url.replace("http://", "http://someone@"),
        "an untrusted host": "https://evil.example/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
        "not a url": "http://[::1",
        "far too long": f"{fake_paypal.cert_url}{'x' * 600}",
    }


@pytest.mark.parametrize("forgery", list(HEADER_FORGERIES))
def test_malformed_transmission_headers_are_refused_before_any_request(make_provider, fake_paypal, forgery):
    webhook = _pending_capture(fake_paypal)
    headers = _with(webhook, **HEADER_FORGERIES[forgery])
    before = _outbound(fake_paypal)
    for provider in (make_provider(), make_provider(webhook_verify="postback")):
        with pytest.raises(WebhookSignatureError):
            provider.parse_webhook(webhook.body, headers)
    assert _outbound(fake_paypal) == before


def test_certificate_urls_other_than_paypals_certificates_are_never_fetched(make_provider, fake_paypal):
    webhook = _pending_capture(fake_paypal)
    provider = make_provider()
    before = _outbound(fake_paypal)
    for name, url in _certificate_url_forgeries(fake_paypal).items():
        with pytest.raises(WebhookSignatureError):
            provider.parse_webhook(webhook.body, _with(webhook, paypal_cert_url=url))
        assert _outbound(fake_paypal) == before, name


@pytest.mark.parametrize("age", [timedelta(hours=1), timedelta(minutes=11), -timedelta(hours=1)])
def test_a_stale_or_future_transmission_is_refused_before_any_request(make_provider, fake_paypal, age):
    """A genuine webhook replayed later (or one dated ahead) is refused, and costs no certificate fetch."""
    webhook = _pending_capture(fake_paypal, sent_at=datetime.now(UTC) - age)
    before = _outbound(fake_paypal)
    for provider in (make_provider(), make_provider(webhook_verify="postback")):
        with pytest.raises(WebhookSignatureError, match="not recent"):
            provider.parse_webhook(webhook.body, webhook.headers)
    assert _outbound(fake_paypal) == before


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"event_type": "PAYMENT.CAPTURE.PENDING"}'])
def test_a_body_that_is_no_paypal_event_is_refused_before_any_request(make_provider, fake_paypal, body):
    signed = fake_paypal.webhook("PAYMENT.CAPTURE.PENDING", "capture", {})
    before = _outbound(fake_paypal)
    with pytest.raises(WebhookSignatureError):
        make_provider().parse_webhook(body, signed.headers)
    assert _outbound(fake_paypal) == before


def test_a_recent_well_formed_webhook_is_still_verified(make_provider, fake_paypal):
    webhook = _pending_capture(fake_paypal, sent_at=datetime.now(UTC) - timedelta(minutes=9))
    assert make_provider().parse_webhook(webhook.body, webhook.headers).type == "PAYMENT.CAPTURE.PENDING"


def test_certificates_are_cached_per_url_and_the_least_recently_used_goes_first(make_provider, fake_paypal):
    names = [f"{fake_paypal.cert_name}-{n}" for n in range(MAX_CACHED_CERTIFICATES + 1)]
    fake_paypal.other_cert_names.update(names)
    provider = make_provider()
    body = _pending_capture(fake_paypal).body

    def verify(name: str) -> int:
        """Verify a webhook naming the certificate at `name`; returns how many downloads it took."""
        url = f"{fake_paypal.base_url}/v1/notifications/certs/{name}"
        before = fake_paypal.certificate_downloads
        webhook = fake_paypal.sign(body, cert_url=url)
        provider.parse_webhook(webhook.body, webhook.headers)
        return fake_paypal.certificate_downloads - before

    assert [verify(name) for name in names[:-1]] == [1] * MAX_CACHED_CERTIFICATES  # the cache is full
    assert verify(names[0]) == 0  # cached, and now the most recently used
    assert verify(names[-1]) == 1  # one more: the least recently used (names[1]) makes room
    assert verify(names[0]) == 0
    assert verify(names[1]) == 1


def test_a_slow_certificate_host_is_given_up_after_the_timeout(make_provider, fake_paypal):
    provider = make_provider()
    provider.certificate_timeout = (1.0, 0.5)
    webhook = _pending_capture(fake_paypal)
    fake_paypal.certificate_delay = 3.0
    try:
        with pytest.raises(WebhookSignatureError, match="could not load the certificate"):
            provider.parse_webhook(webhook.body, webhook.headers)
    finally:
        fake_paypal.certificate_delay = 0.0
    assert provider.parse_webhook(webhook.body, webhook.headers).type == "PAYMENT.CAPTURE.PENDING"  # not cached


def test_a_replayed_webhook_is_answered_400_without_a_certificate_fetch(live_server, paypal_config, fake_paypal):
    server = live_server(**paypal_config)
    webhook = _pending_capture(fake_paypal, sent_at=datetime.now(UTC) - timedelta(hours=2))
    before = _outbound(fake_paypal)
    response = requests.post(f"{server.url}/webhooks/paypal", data=webhook.body, headers=webhook.headers, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature" and "not recent" in response.json()["message"]
    assert _outbound(fake_paypal) == before
