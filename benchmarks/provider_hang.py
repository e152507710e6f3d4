"""Provider hang: Stripe stops answering for a minute in the middle of a sale; the rest of the shop goes on.

python -m benchmarks.provider_hang [--db postgresql|sqlite] [--seats 1000] [--rate 8] [--hang-at 10]
                                   [--hang-seconds 60] [--after 20] [--provider-latency-ms 300]
Buyers of a paid session arrive on a schedule (`--rate` a second, each with its own address behind the proxy),
with buyers of a free session (no provider call) and storefront pages alongside; after `--hang-at` seconds the
fake Stripe answers nothing for `--hang-seconds`. The checkouts caught by the hang must end as 503
`provider_unavailable` with their seat given back (order `failed`); everything else must be served.
Fails (exit 1) unless the seat count, the held orders and the failed orders match the answers exactly and no
page or free registration failed. There is no ceiling: the measure is the shop before, during and after the hang.
"""

from __future__ import annotations

import sys
import threading
import time

from sqlalchemy import func, select

from benchmarks.harness import (
    Gunicorn,
    app_context,
    app_environment,
    buyer_addresses,
    command,
    drop_database,
    finish_load,
    fresh_database,
    migrate,
    ms,
    percentile,
    publish_session,
    start_load,
    table,
)
from tests.fakes.fake_stripe import FakeStripe

FREE_RATE = 1  # free registrations a second
PAGE_RATE = 4  # storefront pages a second
CONCURRENCY = 512  # enough connections that the schedule never waits for an answer
START_MARGIN = 3  # seconds for the load generator to start before the first arrival


def schedule(url: str, paid: int, free: int, rate: float, seconds: float) -> list[dict]:
    """Every request with its arrival time ("at"), in order; "kind" says what it is."""
    requests_: list[dict] = []
    addresses = iter(buyer_addresses(int(seconds * (rate + FREE_RATE)) + 2))
    for kind, per_second in (("paid", rate), ("free", FREE_RATE), ("page", PAGE_RATE)):
        for index in range(int(seconds * per_second)):
            at = index / per_second
            if kind == "page":
                target = f"{url}/s/{paid}" if index % 2 else f"{url}/"
                requests_.append({"kind": kind, "at": at, "url": target})
                continue
            session_id = paid if kind == "paid" else free
            requests_.append({
                "kind": kind, "at": at, "method": "POST", "url": f"{url}/api/v1/sessions/{session_id}/checkout",
                "headers": {"X-Forwarded-For": next(addresses)},
                "json": {"name": f"Buyer {kind} {index}", "email": f"{kind}{index}@example.com", "provider": "stripe"},
            })  # fmt: skip
    return sorted(requests_, key=lambda request: request["at"])


def run(db: str = "postgresql", seats: int = 1000, rate: float = 8.0, hang_at: float = 10.0,
        hang_seconds: float = 60.0, after: float = 20.0, provider_latency_ms: int = 300, read_timeout: float = 0,
        workers: int = 0, threads: int = 0, worker_class: str = "") -> dict:  # fmt: skip
    """`read_timeout`: PROVIDER_READ_TIMEOUT_SECONDS (0: the app's default)."""
    tier = {"workers": workers or None, "threads": threads or None, "worker_class": worker_class or None}
    seconds = hang_at + hang_seconds + after
    database_url = fresh_database(db, "hang")
    try:
        with FakeStripe(api_key="sk_test_bench", webhook_secret="whsec_bench") as stripe:
            stripe.latency = provider_latency_ms / 1000
            env = app_environment(database_url, stripe)
            if read_timeout:
                env["PROVIDER_READ_TIMEOUT_SECONDS"] = str(read_timeout)
            migrate(env)
            paid = publish_session(env, capacity=seats)
            free = publish_session(env, capacity=int(seconds * FREE_RATE) + 10, price=0)
            with Gunicorn("app:app", env, **tier, quiet=True) as app:  # a warning per failed checkout otherwise
                requests_ = schedule(app.url, paid, free, rate, seconds)
                for request in requests_:
                    request["at"] += START_MARGIN
                started = time.monotonic()
                load = start_load(requests_, CONCURRENCY, timeout=hang_seconds + 60)
                hang = threading.Timer(START_MARGIN + hang_at - (time.monotonic() - started), stripe.hang,
                                       [hang_seconds])  # fmt: skip
                hang.start()
                results = finish_load(load)
                hang.cancel()
            counts = _orders(env, paid)
    finally:
        drop_database(database_url)

    # The load generator's clock starts when it does, a little after `started`: arrival times are read from its
    # schedule ("at"), which it keeps to within a few milliseconds at this concurrency.
    rows = [(request["kind"], request["at"] - START_MARGIN, status, (end - begin) * 1000)
            for request, (status, begin, end) in zip(requests_, results, strict=True)]  # fmt: skip

    def phase(at: float) -> str:
        return "before" if at < hang_at else "during" if at < hang_at + hang_seconds else "after"

    report = {"db": db, "seats": seats, "rate": rate, "hang_at": hang_at, "hang_seconds": hang_seconds,
              "provider_latency_ms": provider_latency_ms, **counts,
              "tier": ", ".join(f"{key} {value}" for key, value in tier.items() if value) or "as shipped"}  # fmt: skip
    for when in ("before", "during", "after"):
        for kind in ("paid", "free", "page"):
            mine = [(status, latency) for k, at, status, latency in rows if k == kind and phase(at) == when]
            statuses = [status for status, _latency in mine]
            served = statuses.count(201 if kind != "page" else 200)
            report[f"{kind}_{when}"] = {
                "arrived": len(mine),
                "ok": served,
                "unavailable": statuses.count(503),
                "sold_out": statuses.count(409),
                "other": len(statuses) - served - statuses.count(503) - statuses.count(409),
                "other_statuses": sorted({status for status in statuses if status not in (200, 201, 409, 503)}),
                "p50": percentile([latency for status, latency in mine if status in (200, 201)], 50),
                "p99": percentile([latency for status, latency in mine if status in (200, 201)], 99),
                "p50_503": percentile([latency for status, latency in mine if status == 503], 50),
                "max_503": max([latency for status, latency in mine if status == 503], default=float("nan")),
            }
    sold = sum(report[f"paid_{when}"]["ok"] for when in ("before", "during", "after"))
    unavailable = sum(report[f"paid_{when}"]["unavailable"] for when in ("before", "during", "after"))
    report["sold"], report["unavailable"] = sold, unavailable
    report["ok"] = (
        sold == report["seats_taken"] == report["holding"]
        and unavailable == report["failed"]
        and unavailable > 0
        and not any(report[f"{kind}_{when}"]["other"] for kind in ("paid", "free", "page")
                    for when in ("before", "during", "after"))
        and not any(report[f"{kind}_{when}"]["unavailable"] for kind in ("free", "page")
                    for when in ("before", "during", "after"))
    )  # fmt: skip
    return report


def _orders(env: dict, session_id: int) -> dict:
    from webinar_pay.extensions import db
    from webinar_pay.models import LiveSession, Order

    with app_context(env):
        orders = select(func.count()).select_from(Order).where(Order.session_id == session_id)
        return {
            "seats_taken": db.session.get(LiveSession, session_id).seats_taken,
            "holding": db.session.scalar(orders.where(Order.holds_seat.is_(True))),
            "failed": db.session.scalar(orders.where(Order.status == "failed", Order.holds_seat.is_(False))),
        }


def render(r: dict) -> str:
    def cell(kind: str, when: str) -> str:
        phase = r[f"{kind}_{when}"]
        text = f"{phase['ok']} of {phase['arrived']}, {ms(phase['p50'])} / {ms(phase['p99'])}"
        if phase["unavailable"]:
            text += f"; {phase['unavailable']}× 503 in {ms(phase['p50_503'])} (max {ms(phase['max_503'])})"
        if phase["sold_out"]:
            text += f"; {phase['sold_out']}× sold out"
        if phase["other"]:
            text += f"; {phase['other']} OTHER ({', '.join(map(str, phase['other_statuses']))}; 0: no answer)"
        return text

    end = r["hang_at"] + r["hang_seconds"]
    return table(
        f"Provider hang on {r['db']}: Stripe silent for {r['hang_seconds']:.0f} s during a sale "
        f"({r['rate']:g} buyers/s, Stripe otherwise answering in {r['provider_latency_ms']} ms, "
        f"gunicorn.conf.py {r['tier']})",
        [
            ("served: count, p50 / p99", f"before (0–{r['hang_at']:.0f} s)",
             f"during the hang ({r['hang_at']:.0f}–{end:.0f} s)", f"after ({end:.0f} s–)"),
            ("paid checkouts (Stripe)", *(cell("paid", when) for when in ("before", "during", "after"))),
            ("free registrations (no provider)", *(cell("free", when) for when in ("before", "during", "after"))),
            ("storefront pages", *(cell("page", when) for when in ("before", "during", "after"))),
            ("seats", f"sold {r['sold']}, taken {r['seats_taken']}, orders holding {r['holding']}",
             f"503s {r['unavailable']}, failed orders {r['failed']} (seat given back)",
             "exact" if r["ok"] else "WRONG"),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(command(__doc__, run, render, seats=1000, rate=8.0, hang_at=10.0, hang_seconds=60.0, after=20.0,
                     provider_latency_ms=300, read_timeout=0.0, workers=0, threads=0, worker_class=""))  # fmt: skip
