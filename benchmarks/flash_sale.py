"""Flash sale: many buyers race for few seats through the real checkout route (provider: the fake Stripe,
answering in `--provider-latency-ms` as the real one does).

python -m benchmarks.flash_sale [--db postgresql|sqlite] [--buyers 2000] [--seats 500] [--concurrency 64]
                                [--provider-latency-ms 300]
Fails (exit 1) unless exactly `--seats` seats are sold. Each buyer comes through the proxy with an address of
their own (X-Forwarded-For, `TRUSTED_PROXIES=1`), the default rate limits counted in Redis. The ceiling, under
the same gunicorn.conf.py (always threaded) and the same load, holds a seat with one conditional update and
one insert and then creates a Stripe Checkout Session at the same fake (`POST /hold-and-pay`), as any checkout
with a hosted payment page must; the bare `POST /hold` is measured too.
"""

from __future__ import annotations

import sys

import requests
from sqlalchemy import func, select

from benchmarks.harness import (
    Gunicorn,
    app_context,
    app_environment,
    buyer_addresses,
    command,
    drop_database,
    fresh_database,
    latencies,
    load,
    migrate,
    ms,
    percentile,
    publish_session,
    table,
)
from tests.fakes.fake_stripe import FakeStripe


def rate(results, seats: int) -> float:
    """Holds per second: seats sold over the time until the last seat was sold."""
    sold = sorted(end for status, _start, end in results if status == 201)
    return len(sold) / sold[-1] if sold else 0.0


def checkout_requests(url: str, session_id: int, buyers: int) -> list[dict]:
    """One checkout per buyer, each from its own address behind the proxy."""
    return [
        {"method": "POST", "url": f"{url}/api/v1/sessions/{session_id}/checkout",
         "headers": {"X-Forwarded-For": address},
         "json": {"name": f"Buyer {i}", "email": f"buyer{i}@example.com", "provider": "stripe"}}
        for i, address in enumerate(buyer_addresses(buyers))
    ]  # fmt: skip


def run(
    db: str = "postgresql",
    buyers: int = 2000,
    seats: int = 500,
    concurrency: int = 64,
    provider_latency_ms: int = 300,
    workers: int = 0,
    threads: int = 0,
    worker_class: str = "",
) -> dict:
    """`workers`, `threads`, `worker_class` override gunicorn.conf.py (0, "": as shipped); the ceiling always runs
    threaded (gthread), with the same workers and threads."""
    tier = {"workers": workers or None, "threads": threads or None, "worker_class": worker_class or None}
    threaded = {**tier, "worker_class": "gthread"}
    database_url = fresh_database(db, "flash")
    try:
        with FakeStripe(api_key="sk_test_bench", webhook_secret="whsec_bench") as stripe:
            stripe.latency = provider_latency_ms / 1000
            env = app_environment(database_url, stripe)
            migrate(env)
            session_id = publish_session(env, capacity=seats)
            with Gunicorn("app:app", env, **tier) as app:
                results = load(checkout_requests(app.url, session_id, buyers), concurrency)
                session = requests.get(f"{app.url}/s/{session_id}", timeout=30)
            with Gunicorn("benchmarks.ceiling_app:app", env, **threaded) as ceiling:
                requests.post(f"{ceiling.url}/reset?capacity={seats}", timeout=60).raise_for_status()
                hold = [{"method": "POST", "url": f"{ceiling.url}/hold-and-pay", "json": {"email": f"b{i}@example.com"}}
                        for i in range(buyers)]  # fmt: skip
                paying_results = load(hold, concurrency)
                requests.post(f"{ceiling.url}/reset?capacity={seats}", timeout=60).raise_for_status()
                for request in hold:
                    request["url"] = f"{ceiling.url}/hold"
                ceiling_results = load(hold, concurrency)
            with app_context(env):
                from webinar_pay.extensions import db as database
                from webinar_pay.models import LiveSession, Order

                taken = database.session.get(LiveSession, session_id).seats_taken
                holding = database.session.scalar(
                    select(func.count()).select_from(Order).where(Order.holds_seat.is_(True))
                )
    finally:
        drop_database(database_url)

    statuses = [status for status, _s, _e in results]
    report = {
        "db": db,
        "buyers": buyers,
        "seats": seats,
        "provider_latency_ms": provider_latency_ms,
        "rate_limits": env["RATELIMIT_STORAGE_URI"].split(":")[0],
        "tier": ", ".join(f"{key} {value}" for key, value in tier.items() if value) or "as shipped",
        "sold": statuses.count(201),
        "sold_out_answers": statuses.count(409),
        "errors": len(statuses) - statuses.count(201) - statuses.count(409),
        "seats_taken": taken,
        "orders_holding": holding,
        "storefront_ok": session.status_code == 200,
        "holds_per_s": rate(results, seats),
        "ceiling_holds_per_s": rate(ceiling_results, seats),
        "p50_sold": percentile(latencies(results, {201}), 50),
        "p99_sold": percentile(latencies(results, {201}), 99),
        "p50_sold_out": percentile(latencies(results, {409}), 50),
        "p99_sold_out": percentile(latencies(results, {409}), 99),
        "ceiling_p99": percentile(latencies(ceiling_results, {201, 409}), 99),
        "paying_sold": [status for status, _s, _e in paying_results].count(201),
        "paying_holds_per_s": rate(paying_results, seats),
        "paying_p99": percentile(latencies(paying_results, {201, 409}), 99),
        "paying_p50_sold": percentile(latencies(paying_results, {201}), 50),
        "p99_all": percentile(latencies(results, {201, 409}), 99),
        "wall_s": max(end for _s, _b, end in results),
    }
    report["ok"] = (
        report["sold"] == seats == report["seats_taken"] == report["orders_holding"] == report["paying_sold"]
        and not report["errors"]
    )
    return report


def render(r: dict) -> str:
    def ratio(ours: float, theirs: float, fmt: str) -> str:
        return fmt.format(ours / theirs) if theirs else "—"

    return table(
        f"Flash sale on {r['db']}: {r['buyers']} buyers, {r['seats']} seats, Stripe answering in "
        f"{r['provider_latency_ms']} ms, rate limits in {r['rate_limits']}, gunicorn.conf.py {r['tier']}",
        [
            ("measure", "webinar_pay", "ceiling: hold + Stripe call", "ratio / target"),
            ("seats sold", f"{r['sold']} (taken {r['seats_taken']})", str(r["paying_sold"]),
             "exact" if r["ok"] else "WRONG"),
            ("holds/s", f"{r['holds_per_s']:.0f}", f"{r['paying_holds_per_s']:.0f}",
             ratio(r["holds_per_s"], r["paying_holds_per_s"], "{:.0%} (≥ 50 %)")),
            ("p99, all answers", ms(r["p99_all"]), ms(r["paying_p99"]),
             ratio(r["p99_all"], r["paying_p99"], "{:.1f}× (≤ 2×)")),
            ("p50 / p99 sold", f"{ms(r['p50_sold'])} / {ms(r['p99_sold'])}", f"{ms(r['paying_p50_sold'])} / —", ""),
            ("p50 / p99 sold out", f"{ms(r['p50_sold_out'])} / {ms(r['p99_sold_out'])}", "", ""),
            ("holds/s, bare hold (no Stripe call)", "", f"{r['ceiling_holds_per_s']:.0f}",
             ratio(r["holds_per_s"], r["ceiling_holds_per_s"], "{:.0%} of it")),
            ("all buyers served in", f"{r['wall_s']:.1f} s", "", ""),
            ("errors", str(r["errors"]), "", "0"),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(
        command(
            __doc__,
            run,
            render,
            buyers=2000,
            seats=500,
            concurrency=64,
            provider_latency_ms=300,
            workers=0,
            threads=0,
            worker_class="",
        )
    )
