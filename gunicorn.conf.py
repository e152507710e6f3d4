"""Gunicorn settings for the web tier: `gunicorn app:app` reads this file from the working directory.

DRAFT: numbers to be measured.
"""

import os

bind = "127.0.0.1:8000"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", 4))
threads = int(os.environ.get("WEB_THREADS", 16))
timeout = 30
graceful_timeout = 30
keepalive = 5


def post_fork(server, worker):
    """The app sizes its database pool from the threads a worker really runs (whatever set them)."""
    os.environ["WEB_THREADS"] = str(worker.cfg.threads)


def when_ready(server):
    store = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    if server.cfg.workers > 1 and store.startswith("memory://"):
        server.log.warning(
            "RATELIMIT_STORAGE_URI is %s with %d workers: each worker counts log-ins and checkouts on its own, "
            "so every rate limit is %d times what it says. Set RATELIMIT_STORAGE_URI=redis://host:6379.",
            store,
            server.cfg.workers,
            server.cfg.workers,
        )
