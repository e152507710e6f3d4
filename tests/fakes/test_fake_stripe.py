import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import stripe

from .fake_stripe import EXAMPLES, FakeStripe


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(fake.api_key, base_addresses={"api": fake.base_url}, max_network_retries=0)


def session_params(**overrides: Any) -> dict[str, Any]:
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "EUR",
                    "unit_amount": 2500,
                    "product_data": {"name": "Intro to Flask webinar"},
                },
                "quantity": 2,
            }
        ],
        "success_url": "https://webinar.test/paid?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://webinar.test/cancelled",
        "expires_at": int(time.time()) + 3600,
        "client_reference_id": "order-5",
        "customer_email": "ada@example.com",
        "metadata": {"order_id": 5},
        "payment_intent_data": {"metadata": {"order_id": 5}},
    }
    params.update(overrides)
    return params


def create_session(client: stripe.StripeClient, **overrides: Any) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(params=session_params(**overrides))


def paid_session(fake: FakeStripe, client: stripe.StripeClient) -> stripe.checkout.Session:
    session = create_session(client)
    fake.complete_session(session.id)
    return client.v1.checkout.sessions.retrieve(session.id)


def new_key() -> str:
    return str(uuid.uuid4())


def test_objects_json_holds_stripe_examples() -> None:
    assert set(EXAMPLES) == {"checkout.session", "event", "refund", "payment_intent", "charge", "dispute"}


def test_create_session_returns_an_open_unpaid_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": "k1"})

    assert session.id.startswith("cs_test_")
    assert session.url == f"{fake.base_url}/pay/{session.id}"
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.payment_intent) == ("open", "unpaid", None)
    assert (session.amount_total, session.amount_subtotal, session.currency) == (5000, 5000, "eur")
    assert session.client_reference_id == "order-5"
    assert session.customer_email == "ada@example.com"
    assert session.metadata.to_dict() == {"order_id": "5"}
    assert session.livemode is False
    assert abs(session.created - time.time()) < 5
    assert fake.sessions[session.id]["amount_total"] == 5000
    assert fake.session_params[session.id]["payment_intent_data"] == {"metadata": {"order_id": "5"}}


def test_checkout_page_is_served(client: stripe.StripeClient) -> None:
    session = create_session(client)

    page = requests.get(session.url, timeout=5)

    assert page.status_code == 200
    assert "Fake Stripe Checkout" in page.text


def test_requests_are_recorded_with_decoded_params_and_headers(fake: FakeStripe, client: stripe.StripeClient) -> None:
    key = new_key()
    client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": key})

    recorded = fake.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/checkout/sessions")
    assert "metadata[order_id]=5" in recorded.body
    assert "line_items[0][price_data][unit_amount]=2500" in recorded.body
    assert recorded.params["line_items"][0]["price_data"]["product_data"]["name"] == "Intro to Flask webinar"
    assert recorded.params["payment_intent_data"]["metadata"] == {"order_id": "5"}
    assert recorded.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert recorded.headers["Idempotency-Key"] == key
    assert recorded.headers["Stripe-Version"] == stripe.api_version
    assert fake.idempotency_keys[-1] == key


def test_idempotency_key_replays_the_same_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    params = session_params()
    key = new_key()

    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    second = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})

    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert second.last_response.request_id.startswith("req_")
    assert fake.idempotency_keys.count(key) == 2


def test_idempotency_key_reused_with_other_params_is_rejected(client: stripe.StripeClient) -> None:
    key = new_key()
    client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": key})

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(
            params=session_params(client_reference_id="order-6"), options={"idempotency_key": key}
        )


@pytest.mark.parametrize("seconds", [60, 30 * 60 - 60, 24 * 60 * 60 + 60])
def test_expires_at_outside_stripe_limits_is_rejected(client: stripe.StripeClient, seconds: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_session(client, expires_at=int(time.time()) + seconds)

    assert caught.value.param == "expires_at"
    assert caught.value.http_status == 400


@pytest.mark.parametrize("seconds", [30 * 60 - 3, 24 * 60 * 60])
def test_expires_at_at_the_limits_is_accepted(client: stripe.StripeClient, seconds: int) -> None:
    session = create_session(client, expires_at=int(time.time()) + seconds)

    assert session.expires_at - session.created <= seconds


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"success_url": None}, "success_url"),
        ({"mode": "subscription"}, "mode"),
        ({"line_items": None}, "line_items"),
        (
            {"line_items": [{"price_data": {"currency": "eur", "unit_amount": 100}, "quantity": 1}]},
            "line_items[0][price_data][product_data]",
        ),
    ],
)
def test_invalid_session_params_are_rejected(
    client: stripe.StripeClient, overrides: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        create_session(client, **overrides)

    assert caught.value.param == param


def test_wrong_api_key_is_rejected(fake: FakeStripe) -> None:
    client = stripe.StripeClient("sk_test_wrong_key_1234", base_addresses={"api": fake.base_url}, max_network_retries=0)

    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.checkout.sessions.create(params=session_params())

    assert "Invalid API Key provided" in caught.value.user_message
    assert "wrong_key" not in caught.value.user_message


def test_missing_api_key_and_unknown_route_use_stripe_error_format(fake: FakeStripe) -> None:
    anonymous = requests.get(f"{fake.base_url}/v1/refunds/re_123", timeout=5)
    unknown = requests.get(f"{fake.base_url}/v1/nothing", auth=(fake.api_key, ""), timeout=5)

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    assert anonymous.headers["Request-Id"].startswith("req_")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing)")


def test_complete_session_sends_a_verifiable_event(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = create_session(client)

    signed = fake.complete_session(session.id)
    event = stripe.Webhook.construct_event(signed.payload, signed.headers["Stripe-Signature"], fake.webhook_secret)

    assert (event.id, event.type) == (signed.id, "checkout.session.completed")
    assert event.id.startswith("evt_")
    assert event.api_version == stripe.api_version
    assert event.livemode is False
    completed = event.data.object
    assert (completed.id, completed.status, completed.payment_status) == (session.id, "complete", "paid")
    assert completed.metadata.to_dict() == {"order_id": "5"}
    assert completed.client_reference_id == "order-5"
    assert completed.amount_total == 5000
    assert completed.payment_intent.startswith("pi_")


def test_completed_session_and_payment_intent_can_be_retrieved(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = paid_session(fake, client)

    intent = client.v1.payment_intents.retrieve(session.payment_intent)

    assert (session.status, session.payment_status) == ("complete", "paid")
    assert (intent.status, intent.amount, intent.amount_received, intent.currency) == ("succeeded", 5000, 5000, "eur")
    assert intent.metadata.to_dict() == {"order_id": "5"}
    assert intent.latest_charge.startswith("ch_")


def test_retrieving_an_unknown_session_is_a_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.retrieve("cs_test_missing")

    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"


def test_forged_event_fails_verification(fake: FakeStripe, client: stripe.StripeClient) -> None:
    signed = fake.complete_session(create_session(client).id)
    forged = signed.forged()

    assert forged.payload == signed.payload
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(forged.payload, forged.headers["Stripe-Signature"], fake.webhook_secret)


def test_complete_session_can_forge_a_wrong_amount(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = create_session(client)

    signed = fake.complete_session(session.id, amount_total=1, currency="usd")

    completed = json.loads(signed.payload)["data"]["object"]
    assert (completed["amount_total"], completed["currency"]) == (1, "usd")


def test_delayed_payment_events(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = create_session(client)

    pending = json.loads(fake.complete_session(session.id, payment_status="unpaid").payload)["data"]["object"]
    intent_id = pending["payment_intent"]
    assert fake.payment_intents[intent_id]["status"] == "processing"

    succeeded = fake.async_payment_succeeded(session.id)
    assert succeeded.type == "checkout.session.async_payment_succeeded"
    assert json.loads(succeeded.payload)["data"]["object"]["payment_status"] == "paid"
    assert client.v1.payment_intents.retrieve(intent_id).status == "succeeded"

    failed = fake.async_payment_failed(create_session(client).id)
    assert failed.type == "checkout.session.async_payment_failed"


def test_expire_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    by_helper = fake.expire_session(create_session(client).id)
    by_api = client.v1.checkout.sessions.expire(create_session(client).id)

    assert by_helper.type == "checkout.session.expired"
    assert json.loads(by_helper.payload)["data"]["object"]["status"] == "expired"
    assert by_api.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(by_api.id)


def test_full_refund_defaults_to_the_remaining_amount(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = paid_session(fake, client)

    refund = client.v1.refunds.create(
        params={"payment_intent": session.payment_intent, "reason": "requested_by_customer"}
    )

    assert refund.id.startswith("re_")
    assert (refund.amount, refund.currency, refund.status) == (5000, "eur", "succeeded")
    assert refund.payment_intent == session.payment_intent
    assert client.v1.refunds.retrieve(refund.id).amount == 5000
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": session.payment_intent})
    assert caught.value.code == "charge_already_refunded"


def test_partial_refunds_and_over_refund(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = paid_session(fake, client)

    first = client.v1.refunds.create(
        params={"payment_intent": session.payment_intent, "amount": 2000, "metadata": {"order_id": 5}}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": session.payment_intent, "amount": 3001})
    rest = client.v1.refunds.create(params={"payment_intent": session.payment_intent})

    assert first.amount == 2000
    assert first.metadata.to_dict() == {"order_id": "5"}
    assert caught.value.param == "amount"
    assert rest.amount == 3000
    assert fake.refunded_amount(session.payment_intent) == 5000


def test_refund_of_an_unpaid_payment_is_rejected(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = create_session(client)
    fake.complete_session(session.id, payment_status="unpaid")
    intent_id = fake.sessions[session.id]["payment_intent"]

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": intent_id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": "pi_unknown"})


def test_fail_next_injects_errors(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next.append((500, "api_error", "Something went wrong on Stripe's end."))
    fake.fail_next.append((402, "card_error", "Your card was declined.", "card_declined"))

    with pytest.raises(stripe.APIError) as server_error:
        create_session(client)
    with pytest.raises(stripe.CardError) as card_error:
        create_session(client)

    assert server_error.value.http_status == 500
    assert card_error.value.code == "card_declined"
    assert create_session(client).status == "open"


def test_signed_event_posts_payload_and_headers(fake: FakeStripe) -> None:
    signed = fake.event("charge.refunded", EXAMPLES["charge"])

    signed.post(f"{fake.base_url}/webhooks/stripe")

    recorded = fake.requests[-1]
    assert recorded.body == signed.payload
    assert recorded.headers["Stripe-Signature"] == signed.headers["Stripe-Signature"]
    assert recorded.headers["Content-Type"] == "application/json"
    assert json.loads(signed.payload)["data"]["object"]["object"] == "charge"


def test_concurrent_requests(fake: FakeStripe, client: stripe.StripeClient) -> None:
    shared_key = new_key()
    params = session_params()

    def create(index: int) -> tuple[str, str]:
        fresh = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": f"{shared_key}-{index}"})
        shared = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": shared_key})
        return fresh.id, shared.id

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(create, range(50)))

    assert len({fresh for fresh, _ in results}) == 50
    assert len({shared for _, shared in results}) == 1
