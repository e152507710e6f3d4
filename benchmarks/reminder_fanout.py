"""Reminder fan-out: many reminders fall due at the same instant and the workers send them to an SMTP sink;
one worker is killed (SIGKILL) mid-run and started again.

python -m benchmarks.reminder_fanout [--db postgresql|sqlite] [--messages 10000] [--workers 2] [--no-kill]
Reports the lag after the due time, messages/s, duplicates and misses. The ceiling is raw `smtplib`
sending as many messages of the same size over one persistent connection to the same sink.
"""

from __future__ import annotations

import logging
import secrets
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from sqlalchemy import insert, select, text

from benchmarks.harness import (
    app_context,
    app_environment,
    command,
    drop_database,
    free_port,
    fresh_database,
    migrate,
    ms,
    percentile,
    publish_session,
    start_worker,
    stop_workers,
    table,
)


class Sink:
    """An SMTP server on 127.0.0.1 that only notes who got what, and when."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, str, int]] = []  # (time, recipient, size)
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.arrivals.append((time.time(), recipient, len(envelope.content)))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


def plan_reminders(env: dict, count: int, due_at: datetime) -> None:
    """Paid orders with one reminder each, all due at `due_at`, inserted in bulk."""
    from webinar_pay.extensions import db
    from webinar_pay.models import Enrollment, Order, OutboxMessage, utcnow

    session_id = publish_session(env, capacity=count)
    with app_context(env):
        now = utcnow()
        db.session.execute(insert(Order), [
            {"session_id": session_id, "name": f"Attendee {i}", "email": f"attendee{i}@example.com", "amount": 2500,
             "currency": "EUR", "provider": "stripe", "provider_ref": f"cs_test_fan{i:06d}", "status": "paid",
             "holds_seat": True, "token_nonce": secrets.token_hex(16), "paid_at": now, "created_at": now,
             "updated_at": now}
            for i in range(count)
        ])  # fmt: skip
        db.session.execute(text("UPDATE live_sessions SET seats_taken = :n WHERE id = :id"),
                           {"n": count, "id": session_id})  # fmt: skip
        order_ids = list(db.session.scalars(select(Order.id).where(Order.session_id == session_id)))
        db.session.execute(insert(Enrollment), [
            {"order_id": order_id, "status": "enrolled", "join_url": "https://meet.example.com/bench", "attempts": 0,
             "created_at": now, "updated_at": now} for order_id in order_ids
        ])  # fmt: skip
        db.session.execute(insert(OutboxMessage), [
            {"order_id": order_id, "kind": "reminder:60", "due_at": due_at, "status": "pending", "attempts": 0,
             "ics_sequence": 0, "created_at": now, "updated_at": now} for order_id in order_ids
        ])  # fmt: skip
        db.session.commit()


def ceiling(port: int, count: int, size: int) -> float:
    """Messages per second through raw smtplib over one connection to the same sink."""
    message = EmailMessage()
    message["From"] = "bench@example.com"
    message["Subject"] = "Reminder"
    message.set_content("x" * max(size - 200, 10))
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(count):
            del message["To"]
            message["To"] = f"ceiling{i}@example.com"
            smtp.send_message(message)
    return count / (time.perf_counter() - started)


def run(db: str = "postgresql", messages: int = 10_000, workers: int = 2, kill: bool = True,
        timeout: float = 300, lead_seconds: float = 20) -> dict:  # fmt: skip
    """`lead_seconds`: time for the workers to start before the reminders fall due."""
    database_url = fresh_database(db, "fanout")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd narrates every SMTP command
    sink = Sink()
    sink.controller.start()
    processes: list[subprocess.Popen] = []
    killed = False
    try:
        env = app_environment(
            database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(sink.port), SCHEDULER_TICK_SECONDS="1",
            OUTBOX_CLAIM_TIMEOUT_SECONDS="15", MAIL_DEFAULT_SENDER="Bench <bench@example.com>",
        )  # fmt: skip
        migrate(env)
        due_at = datetime.now(UTC) + timedelta(seconds=lead_seconds)
        plan_reminders(env, messages, due_at)
        processes = [start_worker(env) for _ in range(workers)]
        deadline = time.monotonic() + lead_seconds + timeout
        while time.monotonic() < deadline:
            sent = sink.count()
            if kill and not killed and sent >= messages // 3:
                processes[0].send_signal(signal.SIGKILL)
                processes[0].wait()
                processes[0] = start_worker(env)
                killed = True
            if sent >= messages and (killed or not kill):
                time.sleep(3)  # long enough for a late duplicate to show up
                break
            time.sleep(0.05)
    finally:
        stop_workers(processes)
        drop_database(database_url)
    arrivals = sorted(sink.arrivals)
    per_recipient = Counter(recipient for _t, recipient, _size in arrivals)
    due = due_at.timestamp()
    lags = [(t - due) * 1000 for t, _r, _s in arrivals]
    size = int(sum(s for _t, _r, s in arrivals) / len(arrivals)) if arrivals else 1000
    ceiling_rate = ceiling(sink.port, min(messages, 5000), size)
    sink.controller.stop()
    rate = len(arrivals) / (arrivals[-1][0] - arrivals[0][0]) if len(arrivals) > 1 else 0.0
    report = {
        "db": db,
        "messages": messages,
        "workers": workers,
        "killed_one": killed,
        "delivered": len(per_recipient),
        "duplicates": sum(n - 1 for n in per_recipient.values()),
        "misses": messages - len(per_recipient),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "lag_last": lags[-1] if lags else float("nan"),
        "per_s": rate,
        "ceiling_per_s": ceiling_rate,
    }
    report["ok"] = report["misses"] == 0
    return report


def render(r: dict) -> str:
    ratio = r["per_s"] / r["ceiling_per_s"] if r["ceiling_per_s"] else 0
    return table(
        f"Reminder fan-out on {r['db']}: {r['messages']} reminders due at once, {r['workers']} workers"
        + (", one killed mid-run and restarted" if r["killed_one"] else ""),
        [
            ("measure", "webinar_pay", "ceiling", "ratio / target"),
            ("messages/s", f"{r['per_s']:.0f}", f"{r['ceiling_per_s']:.0f}", f"{ratio:.0%} (≥ 50 %)"),
            ("lag after due time p50 / p99", f"{ms(r['lag_p50'])} / {ms(r['lag_p99'])}", "", ""),
            ("lag of the last one", ms(r["lag_last"]), "", "≤ 60 s"),
            ("delivered / duplicates / misses", f"{r['delivered']} / {r['duplicates']} / {r['misses']}", "",
             "all / 0 / 0"),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(command(__doc__, run, render, messages=10_000, workers=2, kill=True))
