"""Gunicorn settings for the web tier: `gunicorn app:app` reads this file from the working directory.

Override the number of workers with WEB_CONCURRENCY, anything else with GUNICORN_CMD_ARGS or the command line
(for instance GUNICORN_CMD_ARGS="--bind 0.0.0.0:8000 --threads 32").

Why these numbers (benchmarks/README.md has the runs: 2 cores, PostgreSQL, a fake Stripe answering in 300 ms as
the real one does, buyers behind one proxy with the default rate limits in Redis):

- A checkout spends most of its time waiting for Stripe or PayPal to create the payment page. With sync workers
  each wait holds a whole process: 4 of them sold 11 seats a second. With threads the waits overlap: the same
  4 processes sold 80–125 a second, as many as gevent's evented workers did on the same machine.
- Threads and evented workers differ twice. When a provider hangs, each waiting checkout holds a thread until
  PROVIDER_READ_TIMEOUT_SECONDS (10 s): with 4 × 16 threads, 8 stalled checkouts a second took every thread and
  storefront pages waited 6.5 s (p50) for a minute, while 4 × 64 threads, like gevent, kept pages at 8 ms p50 /
  24 ms p99 through the same hang. And while a sale keeps both cores busy, the operating system shares the CPU
  between threads every few milliseconds, whereas gevent runs each request until it waits: a page waits for
  every checkout ahead of it, so its p99 during the sale was worse under gevent. Threads also need nothing of
  the libraries (gevent must patch the standard library before psycopg, stripe and redis are imported) and
  suit SQLite, whose calls block the whole process under gevent.
- So: 4 workers × 64 threads. The limit is then 4 × 64 / 10 s ≈ 25 checkouts a second stalled on a provider
  before pages wait for a thread. A thread costs little while it waits (a small stack, no database connection:
  services commit before calling a provider), so it is threads, not the database pool, that cover the wait.
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
