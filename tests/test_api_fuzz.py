"""Schemathesis drives the JSON API of a running app from the OpenAPI document it serves, and checks every answer.

The app runs in demo mode (sandbox payments: nothing leaves this machine) with a creator whose token the fuzzer
sends, a published session, paid orders and a discount code, which the session, order and code operations address,
so that changes, reads and refunds reach real rows. Every check schemathesis has is on: no 5xx, no status, header or
body the document does not list, invalid input refused, valid input accepted (or refused for a reason the document
gives: a 422 for a rule no schema states, such as a start within five years from now), `Allow` on 405, and the
security the document declares enforced. The seed is fixed, so a failure found once is found again.
"""

from __future__ import annotations

import hashlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import session_payload
from webinar_pay.extensions import db
from webinar_pay.models import ApiToken
from webinar_pay.services.creators import create_creator
from webinar_pay.services.discounts import create_code
from webinar_pay.services.orders import start_checkout
from webinar_pay.services.payments import provider
from webinar_pay.services.sessions import create_session, publish_session
from webinar_pay.services.webhooks import handle_payment_event
from webinar_pay.web.openapi import OPENAPI

SEED = 20261202
PAID_ORDERS = 3
# The shop is built in an emptied database, so its rows are the first of each table; the fuzzer is told these
# values instead of drawing ids that match nothing.
TOKEN = "wp_fuzzing-creator-token"
SESSION_ID = ORDER_ID = CODE_ID = 1

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": 30, "database": "none"},
        "auth": {"openapi": {"ApiToken": {"bearer": TOKEN}}},
        "parameters": {"session_id": SESSION_ID, "order_id": ORDER_ID, "code_id": CODE_ID},
        "checks": {
            # Valid by the schema and still refused: 409 for a state (sold out, refunded already), 422 for rules
            # of time and state that JSON Schema cannot state, 429 `too_many_holds` once one buyer holds
            # HOLDS_PER_BUYER unpaid seats. Never 401: the fuzzer holds a valid token.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "409", "422", "429"]},
        },
    }
)
schema = schemathesis.openapi.from_dict(OPENAPI, config=CONFIG)


class FuzzedShop:
    """A live app with a creator, a published session, paid orders and a discount code."""

    def __init__(self, app):
        self.app = app
        with app.test_request_context():
            creator = create_creator(
                "fuzz@example.com", "Fay Fuzz", "correct horse battery", "Europe/Paris", verified=True
            )
            # A token of our choosing (tokens are stored as their SHA-256), so that the fuzzer's settings can name it.
            db.session.add(ApiToken(creator_id=creator.id, token_hash=hashlib.sha256(TOKEN.encode()).hexdigest()))
            session = publish_session(create_session(creator, session_payload(capacity=1000, price=2500)))
            self.session_id = session.id
            sandbox = provider("sandbox")
            self.order_ids = []
            for number in range(PAID_ORDERS):
                order = start_checkout(session, f"Buyer {number}", f"buyer{number}@example.com", "sandbox").order
                event = sandbox.payment_event(order.provider_ref, order.id, order.amount, order.currency, paid=True)
                assert handle_payment_event("sandbox", event) == "paid"
                db.session.commit()
                self.order_ids.append(order.id)
            code_id = create_code(creator, {"code": "FUZZ10", "percent_off": 10}).id
        assert (self.session_id, self.order_ids[0], code_id) == (SESSION_ID, ORDER_ID, CODE_ID), "an empty database"
        client, prefix = app.test_client(), OPENAPI["servers"][0]["url"]
        assert client.get(f"{prefix}/openapi.json").get_json() == OPENAPI  # the fuzzer reads what this app serves
        assert client.get(f"{prefix}/sessions", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.fixture
def shop(demo_app) -> FuzzedShop:
    return FuzzedShop(demo_app)


@schema.parametrize()
# One shop per operation: its rows are meant to be shared by every example of that operation.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_keeps_the_documented_contract(case, shop):
    # This test's app, through schemathesis's WSGI transport (its probes go through the schema's).
    case.operation.app = case.operation.schema.app = shop.app
    case.call_and_validate()
