"""Webhook burst: Stripe delivers signed `checkout.session.completed` events for many pending orders at once,
some twice, shuffled, as fast as the app answers, while `flask --app app worker` processes apply them.

python -m benchmarks.webhook_burst [--db postgresql|sqlite] [--events 5000] [--duplicates 0.1] [--concurrency 64]
                                   [--appliers 2] [--niceness 10]
Fails (exit 1) unless every payment leaves exactly one paid order, one paid transition, one enrolment and one
confirmation email once the workers have emptied the inbox. The ceiling is a bare route inserting one row per event.
"""

from __future__ import annotations

import random
import secrets
import sys
import time
from datetime import timedelta

import requests
from sqlalchemy import create_engine, func, insert, inspect, select, text

from benchmarks.harness import (
    Gunicorn,
    app_context,
    app_environment,
    command,
    drop_database,
    fresh_database,
    latencies,
    load,
    migrate,
    ms,
    percentile,
    publish_session,
    start_worker,
    stop_workers,
    table,
)
from tests.fakes.fake_stripe import FakeStripe, example

PRICE = 2500


def pending_orders(env: dict, session_id: int, count: int) -> list[int]:
    """Orders as checkout leaves them, inserted in bulk: the burst, not the checkout, is measured here."""
    from webinar_pay.extensions import db
    from webinar_pay.models import LiveSession, Order, utcnow

    with app_context(env):
        now = utcnow()
        rows = [
            {"session_id": session_id, "name": f"Buyer {i}", "email": f"buyer{i}@example.com", "amount": PRICE,
             "currency": "EUR", "provider": "stripe", "provider_ref": f"cs_test_bench{i:06d}", "status": "pending",
             "holds_seat": True, "hold_expires_at": now + timedelta(minutes=32), "token_nonce": secrets.token_hex(16),
             "created_at": now, "updated_at": now}
            for i in range(count)
        ]  # fmt: skip
        db.session.execute(insert(Order), rows)
        db.session.execute(
            text("UPDATE live_sessions SET seats_taken = :n WHERE id = :id"), {"n": count, "id": session_id}
        )
        db.session.commit()
        ids = list(db.session.scalars(select(Order.id).where(Order.session_id == session_id).order_by(Order.id)))
        assert db.session.get(LiveSession, session_id).seats_taken == count
    return ids


def completed_event(stripe: FakeStripe, order_id: int, index: int):
    session = example("checkout.session")
    session.update(
        id=f"cs_test_bench{index:06d}", status="complete", payment_status="paid", amount_total=PRICE,
        amount_subtotal=PRICE, currency="eur", client_reference_id=str(order_id), metadata={"order_id": str(order_id)},
        payment_intent=f"pi_bench{index:06d}", url=None,
    )  # fmt: skip
    return stripe.event("checkout.session.completed", session)


def check_effects(env: dict, count: int) -> dict:
    from webinar_pay.extensions import db
    from webinar_pay.models import Enrollment, Order, OrderLog

    with app_context(env):
        counts = {
            "paid_orders": db.session.scalar(select(func.count()).select_from(Order).where(Order.status == "paid")),
            "paid_transitions": db.session.scalar(
                select(func.count()).select_from(OrderLog).where(OrderLog.to_status == "paid")
            ),
            "enrollments": db.session.scalar(select(func.count()).select_from(Enrollment)),
        }
        if inspect(db.engine).has_table("outbox_messages"):
            counts["confirmations"] = db.session.scalar(
                text("SELECT count(*) FROM outbox_messages WHERE kind = 'confirmation'")
            )
    counts["ok"] = all(value == count for value in counts.values())
    return counts


def drained(database_url: str, started: float, timeout: float) -> float:
    """Seconds from `started` until the workers have emptied the inbox (or `timeout` passed)."""
    engine = create_engine(database_url)
    try:
        while time.monotonic() - started < timeout:
            with engine.connect() as connection:
                if not connection.scalar(text("SELECT count(*) FROM webhook_inbox")):
                    break
            time.sleep(0.2)
    finally:
        engine.dispose()
    return time.monotonic() - started


def run(db: str = "postgresql", events: int = 5000, duplicates: float = 0.1, concurrency: int = 64,
        workers: int = 4, appliers: int = 2, niceness: int = 10, timeout: float = 600) -> dict:  # fmt: skip
    """`appliers`: `flask --app app worker` processes applying the inbox during and after the burst, at
    `niceness` (10: the scheduler favours the web tier, as README suggests for a machine shared with it)."""
    database_url = fresh_database(db, "burst")
    shuffle = random.Random(7)
    processes = []
    try:
        with FakeStripe(api_key="sk_test_bench", webhook_secret="whsec_bench") as stripe:
            env = app_environment(database_url, stripe)
            migrate(env)
            session_id = publish_session(env, capacity=events, price=PRICE)
            order_ids = pending_orders(env, session_id, events)
            signed = [completed_event(stripe, order_id, i) for i, order_id in enumerate(order_ids)]
            deliveries = signed + shuffle.sample(signed, int(events * duplicates))
            shuffle.shuffle(deliveries)
            with Gunicorn("app:app", env, workers=workers) as app:
                processes = [start_worker(env, niceness) for _ in range(appliers)]
                started = time.monotonic()
                results = load([{"method": "POST", "url": f"{app.url}/webhooks/stripe", "body": event.payload,
                                 "headers": event.headers} for event in deliveries], concurrency)  # fmt: skip
                answered = time.monotonic() - started
                applied = drained(env["DATABASE_URL"], started, timeout)
            stop_workers(processes)
            processes = []
            effects = check_effects(env, events)
        with Gunicorn("benchmarks.ceiling_app:app", env, workers=workers) as ceiling:
            requests.post(f"{ceiling.url}/reset", timeout=60).raise_for_status()
            ceiling_results = load([{"method": "POST", "url": f"{ceiling.url}/event", "body": event.payload,
                                     "headers": event.headers} for event in deliveries], concurrency)  # fmt: skip
    finally:
        stop_workers(processes)
        drop_database(database_url)

    def per_second(rows) -> float:
        return len(rows) / max(end for _status, _start, end in rows)

    ok_statuses = [status for status, _s, _e in results if status == 200]
    return {
        "db": db,
        "events": events,
        "deliveries": len(deliveries),
        "acknowledged": len(ok_statuses),
        "not_acknowledged": len(results) - len(ok_statuses),
        "events_per_s": per_second(results),
        "ceiling_events_per_s": per_second(ceiling_results),
        "p50": percentile(latencies(results, {200}), 50),
        "p99": percentile(latencies(results, {200}), 99),
        "ceiling_p99": percentile(latencies(ceiling_results, {200}), 99),
        "appliers": appliers,
        "niceness": niceness,
        "answered_s": answered,
        "applied_s": applied,
        **effects,
    }


def render(r: dict) -> str:
    ratio = r["events_per_s"] / r["ceiling_events_per_s"] if r["ceiling_events_per_s"] else 0
    effects = ", ".join(f"{key} {r[key]}" for key in ("paid_orders", "paid_transitions", "enrollments",
                                                     "confirmations") if key in r)  # fmt: skip
    return table(
        f"Webhook burst on {r['db']}: {r['events']} payments, {r['deliveries']} deliveries (duplicates included)",
        [
            ("measure", "webinar_pay", "ceiling", "ratio / target"),
            ("events/s", f"{r['events_per_s']:.0f}", f"{r['ceiling_events_per_s']:.0f}", f"{ratio:.0%} (≥ 50 %)"),
            ("p50 / p99 of the 2xx", f"{ms(r['p50'])} / {ms(r['p99'])}", ms(r["ceiling_p99"]), "p99 < 500 ms"),
            ("not acknowledged (Stripe retries)", str(r["not_acknowledged"]), "", "0"),
            (
                f"all answered / all applied by {r['appliers']} workers (nice {r['niceness']})",
                f"{r['answered_s']:.1f} s / {r['applied_s']:.1f} s",
                "",
                f"{r['events'] / r['applied_s']:.0f} payments/s applied",
            ),
            ("effects", effects, "", "exactly once" if r["ok"] else "WRONG"),
        ],
    )


if __name__ == "__main__":
    sys.exit(
        command(__doc__, run, render, events=5000, duplicates=0.1, concurrency=64, workers=4, appliers=2, niceness=10)
    )
