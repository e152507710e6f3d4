"""Gunicorn settings for the web tier: `gunicorn app:app` reads this file from the working directory.

Override the number of workers with WEB_CONCURRENCY, anything else with GUNICORN_CMD_ARGS or the command line
(for instance GUNICORN_CMD_ARGS="--bind 0.0.0.0:8000 --worker-connections 500").

Why these numbers (benchmarks/README.md has the runs, on 2 cores with PostgreSQL and a fake Stripe answering in
300 ms as the real one does):

- A checkout spends most of its time waiting for Stripe or PayPal to create the payment page. With sync workers
  each wait holds a whole worker: 4 of them sold 11 seats a second. Threads (gthread, 4 × 16) and gevent
  (4 workers) sold the same 80–125 a second within the noise of the machine, with gevent's p99 a little lower.
- They differ when a provider hangs. Each waiting checkout holds a thread until the read timeout
  (PROVIDER_READ_TIMEOUT_SECONDS, 10 s), so 4 × 16 threads absorb about 6 stalled checkouts a second; at 8 a
  second the threads ran out and storefront pages waited 6.5 s (p50) for a minute. Under gevent a waiting
  checkout holds a greenlet: the same hang left pages at 10 ms p50 / 27 ms p99 and failed only the checkouts
  it caught, each with a 503 after 10 s. So: gevent. It cooperates with what the app waits on: the stripe
  library and PayPal/Zoom clients (requests), Redis and psycopg 3, which detects gevent and waits through it;
  SQLite calls block their worker while they run, which its single writer does anyway.
- Never import the app (or psycopg) in this file, and keep `preload_app` off: gevent must patch the standard
  library in each worker before they are imported.
"""

import os

bind = "127.0.0.1:8000"  # behind the TLS proxy on the same machine (TRUSTED_PROXIES=1)
worker_class = "gevent"
# Four processes on two cores: a worker is one core at most (the GIL), and one whose CPU is busy rendering or
# parsing still leaves the others to answer. More cores: raise WEB_CONCURRENCY, keeping workers × the database
# pool (DATABASE_POOL_SIZE, 10) under PostgreSQL's max_connections (100 by default) with room for the workers.
workers = int(os.environ.get("WEB_CONCURRENCY", 4))
# Requests a worker has in hand at once, most of them waiting on a provider or a client. Database work queues
# for the pool (at most 10 s, then it fails), not here.
worker_connections = 1000
# The longest request: a checkout whose provider connects (3 s) then answers nothing (10 s) — 13 s and a 503.
# A stopping worker lets its requests finish within that, with room; a worker that does not check in for 30 s
# (stuck in C code, never in a provider call, which yields) is replaced.
timeout = 30
graceful_timeout = 20
keepalive = 5  # the proxy reuses its connections to us; it closes idle ones well before this


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
