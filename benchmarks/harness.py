"""What every scenario needs: a fresh database, the app and the ceiling under gunicorn, the fake Stripe,
the load generator in its own process, and a small results table."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
BENCH_NETWORK = int(ipaddress.ip_address("198.18.0.0"))
SECRET_KEY = secrets.token_urlsafe(48)  # production refuses a key that does not look random


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(kind: str, name: str) -> str:
    """An empty database for one scenario: a new PostgreSQL database, or a new SQLite file."""
    if kind == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp(prefix='webinar_pay_bench_')) / 'bench.sqlite3'}"
    base = make_url(os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES)
    base = base.set(drivername="postgresql+psycopg")
    database = f"{base.database}_bench_{name}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    return base.set(database=database).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def rate_limit_store() -> str:
    """Redis, as production runs it with several workers (`BENCH_REDIS_URL`, else the local server); memory://
    only where no Redis answers (each worker then counts on its own, which no buyer here comes close to)."""
    url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return "memory://"
    return url


def buyer_addresses(count: int) -> list[str]:
    """Distinct client addresses, as a proxy reports them in X-Forwarded-For: from 198.18.0.0/15 (set aside for
    benchmarks), starting at a random point so that runs close together do not share rate-limit counters."""
    start = random.randrange(1 << 17)
    return [str(ipaddress.ip_address(BENCH_NETWORK + (start + index) % (1 << 17))) for index in range(count)]


def app_environment(database_url: str, stripe=None, **extra: str) -> dict[str, str]:
    """The app as production runs it: behind one proxy (`TRUSTED_PROXIES=1`: every simulated buyer has its own
    X-Forwarded-For address) with the README's default rate limits, counted in Redis."""
    env = {
        **os.environ,
        "WEBINAR_PAY_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "SCHEDULER_ENABLED": "0",
        "TRUSTED_PROXIES": "1",
        "RATELIMIT_STORAGE_URI": rate_limit_store(),
        "PYTHONPATH": str(ROOT),
    }
    for name in ("RATELIMIT_ENABLED", "RATELIMIT_CHECKOUT", "RATELIMIT_LOGIN", "WEB_CONCURRENCY", "WEB_THREADS"):
        env.pop(name, None)  # the shipped defaults, whatever this shell has set
    if stripe is not None:
        env.update(STRIPE_SECRET_KEY=stripe.api_key, STRIPE_WEBHOOK_SECRET=stripe.webhook_secret,
                   STRIPE_API_BASE=stripe.base_url)  # fmt: skip
    else:
        env["DEMO_MODE"] = "1"  # no payment keys: production runs demo mode only when told to
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip


@dataclass
class Gunicorn:
    """`gunicorn app:app` (or the ceiling) under the shipped gunicorn.conf.py, on a free port of 127.0.0.1.

    `workers`, `threads` and `worker_class` override the file's numbers (None: as shipped)."""

    target: str
    env: dict[str, str]
    workers: int | None = None
    threads: int | None = None
    worker_class: str | None = None
    quiet: bool = False  # no app log on the terminal (a scenario that makes it warn on purpose)
    url: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)

    def __enter__(self) -> Gunicorn:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**self.env, "BASE_URL": self.url}
        command = [
            sys.executable, "-m", "gunicorn", self.target, "-c", str(ROOT / "gunicorn.conf.py"),
            "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "2048",
        ]  # fmt: skip
        for option, value in (("-w", self.workers), ("--threads", self.threads), ("-k", self.worker_class)):
            if value:
                command += [option, str(value)]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL if self.quiet else None)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/nothing-here", timeout=10)
                return self
            except requests.RequestException:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"gunicorn {self.target} did not start")

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_worker(env: dict[str, str], niceness: int = 0) -> subprocess.Popen:
    """One `flask --app app worker` process, as production runs it (`niceness` > 0: below the web tier)."""
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=(lambda: os.nice(niceness)) if niceness else None)  # fmt: skip


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def load(requests_: list[dict], concurrency: int) -> list[tuple[int, float, float]]:
    """Send the requests from a separate process; returns (status, start, end) per request."""
    job = json.dumps({"concurrency": concurrency, "requests": requests_})
    result = subprocess.run([sys.executable, "-m", "benchmarks.loadgen"], cwd=ROOT, input=job, capture_output=True,
                            text=True, check=True)  # fmt: skip
    return [tuple(row) for row in json.loads(result.stdout)]


def start_load(requests_: list[dict], concurrency: int, timeout: float = 120) -> subprocess.Popen:
    """Like `load`, but in the background: collect the results with `finish_load`. `timeout`: per request."""
    with tempfile.TemporaryFile("w+") as job:
        json.dump({"concurrency": concurrency, "requests": requests_, "timeout": timeout}, job)
        job.seek(0)
        return subprocess.Popen([sys.executable, "-m", "benchmarks.loadgen"], cwd=ROOT, stdin=job,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip


def finish_load(process: subprocess.Popen) -> list[tuple[int, float, float]]:
    output, _ = process.communicate()
    return [tuple(row) for row in json.loads(output)]


def command(doc: str, run: Callable[..., dict], render: Callable[[dict], str], **defaults) -> int:
    """A scenario's command line: `--db` and one option per keyword of `run` given here with its default
    (a boolean default `True` becomes `--no-<name>`). Prints the table; exit 1 unless the run was correct."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    for name, default in defaults.items():
        if default is True:
            parser.add_argument(f"--no-{name.replace('_', '-')}", dest=name, action="store_false")
        else:
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    report = run(**vars(parser.parse_args()))
    print(render(report))
    return 0 if report["ok"] else 1


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latencies(results, statuses: set[int]) -> list[float]:
    return [(end - start) * 1000 for status, start, end in results if status in statuses]


def ms(value: float) -> str:
    return f"{value:.0f} ms" if value == value else "—"


def table(title: str, rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [f"## {title}", ""]
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"


def publish_session(env: dict[str, str], capacity: int, price: int = 2500) -> int:
    """A creator and one published session, made through the app's own services."""
    from webinar_pay.models import utcnow
    from webinar_pay.services.creators import create_creator
    from webinar_pay.services.sessions import create_session
    from webinar_pay.services.sessions import publish_session as publish

    with app_context(env):
        creator = create_creator(
            f"bench-{time.time_ns()}@example.com", "Bench Creator", "benchmark password", "UTC", verified=True
        )
        session = create_session(creator, {
            "title": "Flash sale", "starts_at": (utcnow() + timedelta(days=3)).isoformat(), "timezone": "UTC",
            "duration_minutes": 60, "price": price, "currency": "EUR", "capacity": capacity, "platform": "link",
            "join_link": "https://meet.example.com/bench",
        })  # fmt: skip
        publish(session)
        return session.id


def _config_from(env: dict[str, str]) -> dict:
    return {"ENV_NAME": "production", "SECRET_KEY": env["SECRET_KEY"], "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY", ""), "STRIPE_API_BASE": env.get("STRIPE_API_BASE", ""),
            "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET", ""),
            "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
            "DEMO_MODE": env.get("DEMO_MODE") == "1"}  # fmt: skip


@contextmanager
def app_context(env: dict[str, str]) -> Iterator[None]:
    """The app's context on the benchmark database; every connection is closed on the way out."""
    from webinar_pay import create_app
    from webinar_pay.extensions import db

    with create_app(_config_from(env)).app_context():
        try:
            yield
        finally:
            db.session.remove()
            db.engine.dispose()
