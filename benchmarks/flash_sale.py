"""Flash sale: many buyers race for few seats through the real checkout route (provider: the fake Stripe,
answering in `--provider-latency-ms` as the real one does).

python -m benchmarks.flash_sale [--db postgresql|sqlite] [--buyers 2000] [--seats 500] [--concurrency 64]
                                [--provider-latency-ms 300] [--no-discount]
Fails (exit 1) unless exactly `--seats` seats are sold. The same sale is then run again, on the same server, on a
second session with a 20 % discount code on every order (a code for all the creator's sessions, no use limit: each
hold also takes a use), unless `--no-discount`; its holds/s are compared with the sale without a code (target:
within 10 %), and it fails unless exactly `--seats` uses are taken and Stripe was asked for 80 % of the price.
Each buyer comes through the proxy with an address of
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


def checkout_requests(url: str, session_id: int, buyers: int, code: str | None = None) -> list[dict]:
    """One checkout per buyer, each from its own address behind the proxy (with `code`: each enters it)."""
    extra = {"discount_code": code} if code else {}
    return [
        {"method": "POST", "url": f"{url}/api/v1/sessions/{session_id}/checkout",
         "headers": {"X-Forwarded-For": address},
         "json": {"name": f"Buyer {i}", "email": f"buyer{i}@example.com", "provider": "stripe", **extra}}
        for i, address in enumerate(buyer_addresses(buyers))
    ]  # fmt: skip


DISCOUNT_CODE = "FLASH20"


def add_discount_code(env: dict[str, str], session_id: int) -> int:
    """A 20 % code of the session's creator, for all their sessions; returns its id."""
    from webinar_pay.extensions import db as database
    from webinar_pay.models import LiveSession
    from webinar_pay.services.discounts import create_code

    with app_context(env):
        creator = database.session.get(LiveSession, session_id).creator
        return create_code(creator, {"code": DISCOUNT_CODE, "percent_off": 20}).id


def run(
    db: str = "postgresql",
    buyers: int = 2000,
    seats: int = 500,
    concurrency: int = 64,
    provider_latency_ms: int = 300,
    workers: int = 0,
    threads: int = 0,
    worker_class: str = "",
    discount: bool = True,
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
            coded_id = publish_session(env, capacity=seats) if discount else None
            code_id = add_discount_code(env, coded_id) if discount else None
            with Gunicorn("app:app", env, **tier) as app:
                results = load(checkout_requests(app.url, session_id, buyers), concurrency)
                session = requests.get(f"{app.url}/s/{session_id}", timeout=30)
                if discount:
                    coded_results = load(checkout_requests(app.url, coded_id, buyers, DISCOUNT_CODE), concurrency)
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
                from webinar_pay.models import DiscountCode, LiveSession, Order

                def holding_seats(of: int) -> int:
                    return database.session.scalar(
                        select(func.count()).select_from(Order).where(Order.session_id == of, Order.holds_seat)
                    )

                taken = database.session.get(LiveSession, session_id).seats_taken
                holding = holding_seats(session_id)
                if discount:
                    coded_taken = database.session.get(LiveSession, coded_id).seats_taken
                    coded_holding = holding_seats(coded_id)
                    code_uses = database.session.get(DiscountCode, code_id).uses
                    amounts = set(database.session.scalars(select(Order.amount).where(Order.session_id == coded_id)))
                    asked = {s["amount_total"] for s in stripe.sessions.values() if s["amount_total"] != 2500}
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
    report["discount"] = discount
    if discount:
        coded = [status for status, _s, _e in coded_results]
        report.update({
            "coded_sold": coded.count(201),
            "coded_errors": len(coded) - coded.count(201) - coded.count(409),
            "coded_seats_taken": coded_taken,
            "coded_orders_holding": coded_holding,
            "code_uses": code_uses,
            "coded_amounts": sorted(amounts),
            "coded_stripe_amounts": sorted(asked),
            "coded_holds_per_s": rate(coded_results, seats),
            "coded_p50_sold": percentile(latencies(coded_results, {201}), 50),
            "coded_p99_sold": percentile(latencies(coded_results, {201}), 99),
            "coded_p99_all": percentile(latencies(coded_results, {201, 409}), 99),
            "coded_wall_s": max(end for _s, _b, end in coded_results),
        })  # fmt: skip
        report["ok"] = report["ok"] and (
            report["coded_sold"] == seats == report["coded_seats_taken"] == report["coded_orders_holding"]
            == report["code_uses"]
            and report["coded_amounts"] == report["coded_stripe_amounts"] == [2000]
            and not report["coded_errors"]
        )  # fmt: skip
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
            *(_discount_rows(r) if r.get("discount") else []),
        ],
    )  # fmt: skip


def _discount_rows(r: dict) -> list[tuple[str, ...]]:
    """The same sale with a 20 % code on every order, next to the figures without one."""
    ratio = f"{r['coded_holds_per_s'] / r['holds_per_s']:.0%} (≥ 90 %)" if r["holds_per_s"] else "—"
    correct = r["coded_sold"] == r["code_uses"] == r["seats"] and r["coded_stripe_amounts"] == [2000]
    return [
        ("with a 20 % code: seats sold / uses", f"{r['coded_sold']} / {r['code_uses']}",
         f"Stripe asked {', '.join(map(str, r['coded_stripe_amounts']))}", "exact" if correct else "WRONG"),
        ("with a 20 % code: holds/s", f"{r['coded_holds_per_s']:.0f}", f"without: {r['holds_per_s']:.0f}", ratio),
        ("with a 20 % code: p50 / p99 sold", f"{ms(r['coded_p50_sold'])} / {ms(r['coded_p99_sold'])}",
         f"without: {ms(r['p50_sold'])} / {ms(r['p99_sold'])}", ""),
        ("with a 20 % code: p99, all answers", ms(r["coded_p99_all"]), f"without: {ms(r['p99_all'])}", ""),
        ("with a 20 % code: errors", str(r["coded_errors"]), "", "0"),
    ]  # fmt: skip


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
            discount=True,
        )
    )
