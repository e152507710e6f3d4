"""Gunicorn settings for the web tier: `gunicorn app:app` reads this file from the working directory.

Override the number of workers with WEB_CONCURRENCY, anything else with GUNICORN_CMD_ARGS or the command line
(for instance GUNICORN_CMD_ARGS="--bind 0.0.0.0:8000 --threads 32").

Why these numbers (benchmarks/README.md has the runs: 2 cores, PostgreSQL, a fake Stripe answering in 300 ms as
the real one does, buyers behind one proxy with the default rate limits in Redis):

- A checkout spends most of its time waiting for Stripe or PayPal to create the payment page. With sync workers
  each wait holds a whole process: 4 of them sold 13 seats a second (p50 5 s). With threads the waits overlap:
  the same 4 processes sold 98–108 a second, 63–68 % of a bare threaded route that holds a seat and creates the
  same Checkout Session. gevent's evented workers sold 117–122.
- When a provider hangs, each waiting checkout holds its thread until PROVIDER_READ_TIMEOUT_SECONDS (10 s). With
  16 threads a worker, 8 stalled checkouts a second took every thread and storefront pages waited 6 s (p50) for
  the minute of the hang; with 64, pages stayed at 8 ms p50 / 15 ms p99 through it, as under gevent. The bound is
  now 4 × 64 / 10 s ≈ 25 stalled checkouts a second. A waiting thread costs little: a small stack and no database
  connection (services commit before calling a provider), so threads, not the pool, cover the waits.
- Threads rather than gevent: while a sale keeps both cores busy, the operating system switches threads every
  few milliseconds, while gevent runs each request until it waits, so a page queues behind every checkout ahead
  of it (storefront p99 during the sale: 128–247 ms threaded, 174–391 ms evented; with other work on the
  machine, 0.4–0.8 s and 0.4–1.8 s). And threads ask nothing of the libraries (gevent must patch the standard
  library before psycopg, stripe and redis are imported) and suit SQLite, whose calls would stall a whole
  evented worker.
"""

import os

bind = "127.0.0.1:8000"  # behind the TLS proxy on the same machine (TRUSTED_PROXIES=1)
worker_class = "gthread"
# A process runs Python on one core at a time (the GIL): 2 per core, so that one busy rendering or parsing still
# leaves another to answer. More cores: raise WEB_CONCURRENCY, keeping workers × DATABASE_POOL_SIZE (10), plus
# the `flask worker` processes, under PostgreSQL's max_connections (100 by default).
workers = int(os.environ.get("WEB_CONCURRENCY", 4))
threads = 64
# The longest request: a checkout whose provider connects (3 s) then answers nothing (10 s): 13 s, then a 503.
# A stopping worker lets its requests finish within graceful_timeout. `timeout` watches the worker's own loop,
# which a thread waiting on a provider does not hold up: only a worker stuck for 30 s is replaced.
timeout = 30
graceful_timeout = 20
keepalive = 5  # the proxy reuses its connections to us
# Ticket and join links (/t/<order id>.<signature>, /j/...) open an attendee's order: the access and error logs
# keep the order id and drop the signature (webinar_pay/logs.py).
logger_class = "webinar_pay.logs.GunicornLogger"


def when_ready(server):
    """The rate limits are counted per process unless they are in a shared store: say so at start."""
    store = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    if server.cfg.workers > 1 and store.startswith("memory://"):
        server.log.warning(
            "RATELIMIT_STORAGE_URI is %s with %d workers: each worker counts log-ins and checkouts on its own, so "
            "every rate limit is %d times what it says. Set RATELIMIT_STORAGE_URI=redis://host:6379.",
            store,
            server.cfg.workers,
            server.cfg.workers,
        )
