"""The ceilings: bare Flask routes doing only the essential database work, on the same database.

`POST /hold` is one atomic conditional seat update plus one insert (what a checkout cannot do less than);
`POST /hold-and-pay` is the same followed by one Checkout Session created through the `stripe` library at
`STRIPE_API_BASE` (what a checkout that redirects to a hosted payment page cannot do less than);
`POST /event` inserts one row keyed by the event id (what a webhook cannot do less than).
Served by gunicorn exactly like the app: `gunicorn benchmarks.ceiling_app:app`.
"""

from __future__ import annotations

import os
import time

import stripe
from flask import Flask, request
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, text, update
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
seats = Table(
    "bench_seats", metadata, Column("id", Integer, primary_key=True), Column("capacity", Integer),
    Column("taken", Integer),
)  # fmt: skip
holds = Table("bench_holds", metadata, Column("id", Integer, primary_key=True), Column("email", String(254)))
events = Table("bench_events", metadata, Column("id", Integer, primary_key=True), Column("event_id", String(255),
               unique=True))  # fmt: skip

url = os.environ["DATABASE_URL"]
engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
app = Flask(__name__)
stripe_client = stripe.StripeClient(
    os.environ.get("STRIPE_SECRET_KEY", "sk_test_none"),
    base_addresses={"api": os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")},
)


@app.post("/reset")
def reset():
    """Empty tables and `capacity` free seats; called once before a run."""
    capacity = int(request.args.get("capacity", 0))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("PRAGMA journal_mode=WAL"))
        connection.execute(insert(seats).values(id=1, capacity=capacity, taken=0))
    return {"capacity": capacity}


@app.post("/hold")
def hold():
    with engine.begin() as connection:
        taken = connection.execute(
            update(seats).where(seats.c.id == 1, seats.c.taken < seats.c.capacity).values(taken=seats.c.taken + 1)
        )
        if taken.rowcount != 1:
            return {"error": "sold_out"}, 409
        connection.execute(insert(holds).values(email=request.get_json()["email"]))
    return {"status": "held"}, 201


@app.post("/hold-and-pay")
def hold_and_pay():
    answer, status = hold()
    if status != 201:
        return answer, status
    session = stripe_client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "http://127.0.0.1/done", "cancel_url": "http://127.0.0.1/back",
        "expires_at": int(time.time()) + 31 * 60, "customer_email": request.get_json()["email"],
        "line_items": [{"quantity": 1, "price_data": {"currency": "eur", "unit_amount": 2500,
                                                      "product_data": {"name": "Flash sale"}}}],
    })  # fmt: skip
    return {"status": "held", "checkout_url": session.url}, 201


@app.post("/event")
def event():
    try:
        with engine.begin() as connection:
            connection.execute(insert(events).values(event_id=request.get_json()["id"]))
    except IntegrityError:
        return {"received": True, "duplicate": True}
    return {"received": True}
