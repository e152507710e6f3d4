"""Many buyers at once never get more seats than there are, on SQLite and on PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from tests.conftest import Api, session_payload
from webinar_pay.extensions import db
from webinar_pay.models import LiveSession, Order


def test_fifty_parallel_buyers_for_ten_seats(live_server, create_creator):
    server = live_server(HOLDS_PER_CLIENT=0)  # fifty buyers, all on this machine: no limit per client address
    creator = Api(server.url, create_creator()[1])
    _status, body = creator.post("/api/v1/sessions", session_payload(capacity=10))
    session_id = body["id"]
    creator.post(f"/api/v1/sessions/{session_id}/publish")

    def buy(i: int) -> int:
        response = requests.post(
            f"{server.url}/api/v1/sessions/{session_id}/checkout",
            json={"name": f"Buyer {i}", "email": f"buyer{i}@example.com", "provider": "stripe"},
            timeout=60,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(buy, range(50)))

    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 40, statuses
    with server.app.app_context():
        session = db.session.get(LiveSession, session_id)
        holding = db.session.scalar(
            select(func.count()).select_from(Order).where(Order.session_id == session_id, Order.holds_seat.is_(True))
        )
        assert (session.seats_taken, holding) == (10, 10)
    assert creator.get(f"/api/v1/sessions/{session_id}")[1]["seats_left"] == 0
