"""Mixed load: how fast the storefront answers while a flash sale runs, against the same storefront idle.

python -m benchmarks.mixed_load [--db postgresql|sqlite] [--pages 600] [--buyers 2000] [--seats 500]
                                [--provider-latency-ms 300]
The sale is the flash sale's: buyers with addresses of their own, the fake Stripe answering in 300 ms.
"""

from __future__ import annotations

import sys

from benchmarks.flash_sale import checkout_requests
from benchmarks.harness import (
    Gunicorn,
    app_environment,
    command,
    drop_database,
    finish_load,
    fresh_database,
    latencies,
    load,
    migrate,
    ms,
    percentile,
    publish_session,
    start_load,
    table,
)
from tests.fakes.fake_stripe import FakeStripe

PAGE_CONCURRENCY = 8


def run(db: str = "postgresql", pages: int = 600, buyers: int = 2000, seats: int = 500, concurrency: int = 64,
        provider_latency_ms: int = 300, workers: int = 0) -> dict:  # fmt: skip
    database_url = fresh_database(db, "mixed")
    try:
        with FakeStripe(api_key="sk_test_bench", webhook_secret="whsec_bench") as stripe:
            stripe.latency = provider_latency_ms / 1000
            env = app_environment(database_url, stripe)
            migrate(env)
            session_id = publish_session(env, capacity=seats)
            with Gunicorn("app:app", env, workers=workers or None) as app:
                browse = [{"url": f"{app.url}/"} if i % 2 else {"url": f"{app.url}/s/{session_id}"}
                          for i in range(pages)]  # fmt: skip
                load(browse[:80], PAGE_CONCURRENCY)  # every worker compiles its templates once: not "idle" pages
                idle = load(browse, PAGE_CONCURRENCY)
                sale = start_load(checkout_requests(app.url, session_id, buyers), concurrency)
                busy = load(browse, PAGE_CONCURRENCY)
                sale_results = finish_load(sale)
    finally:
        drop_database(database_url)
    report = {
        "db": db,
        "pages": pages,
        "idle_p50": percentile(latencies(idle, {200}), 50),
        "idle_p99": percentile(latencies(idle, {200}), 99),
        "busy_p50": percentile(latencies(busy, {200}), 50),
        "busy_p99": percentile(latencies(busy, {200}), 99),
        "page_errors": sum(1 for status, _s, _e in idle + busy if status != 200),
        "sold": sum(1 for status, _s, _e in sale_results if status == 201),
        "sale_errors": sum(1 for status, _s, _e in sale_results if status not in (201, 409)),
        "provider_latency_ms": provider_latency_ms,
        "seats": seats,
    }
    report["ok"] = not report["page_errors"] and report["sold"] == seats and not report["sale_errors"]
    return report


def render(r: dict) -> str:
    return table(
        f"Mixed load on {r['db']}: storefront pages while a flash sale runs (Stripe answering in "
        f"{r['provider_latency_ms']} ms)",
        [
            ("measure", "idle", "during the sale", "ratio / target"),
            ("storefront p50", ms(r["idle_p50"]), ms(r["busy_p50"]), f"{r['busy_p50'] / r['idle_p50']:.1f}×"),
            ("storefront p99", ms(r["idle_p99"]), ms(r["busy_p99"]), f"{r['busy_p99'] / r['idle_p99']:.1f}× (≤ 3×)"),
            ("page errors", "", str(r["page_errors"]), ""),
            ("seats sold meanwhile", "", f"{r['sold']} of {r['seats']}", f"{r['sale_errors']} checkout errors"),
        ],
    )


if __name__ == "__main__":
    sys.exit(command(__doc__, run, render, pages=600, buyers=2000, seats=500, provider_latency_ms=300, workers=0))
