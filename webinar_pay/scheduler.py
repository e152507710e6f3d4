"""Periodic work: apply received payment webhooks, give expired holds back (asking the provider first), send due
refunds and due emails, erase attendees' personal data once it is kept no longer.

The jobs keep no state of their own: every tick re-reads the database and claims its rows atomically,
so any number of processes may run them. APScheduler only supplies the clock. Each tick and webhook poll also
beats the process's heartbeat (`services.heartbeat`), which `flask worker --check` and `/readyz` read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from .config import settings
from .extensions import db
from .services import heartbeat
from .services.enrollment import enroll_due
from .services.inbox import apply_webhooks
from .services.orders import expire_holds
from .services.outbox.dispatch import send_due_emails
from .services.privacy import erase_expired_attendees
from .services.refunds import process_refunds

log = logging.getLogger(__name__)
_started_lock = threading.Lock()


def tick() -> dict[str, int]:
    """One pass of every job. Needs an app context."""
    jobs = (
        ("apply_webhooks", lambda: len(apply_webhooks())),  # first: the holds job then sees the payments that came
        ("expire_holds", expire_holds),
        ("process_refunds", process_refunds),
        ("enroll_due", enroll_due),  # before the emails, so that they carry the fresh join link
        ("send_emails", send_due_emails),
        ("erase_expired_attendees", erase_expired_attendees),  # ATTENDEE_RETENTION_DAYS, deleted accounts
    )
    results = {name: _guarded(name, job) for name, job in jobs}
    db.session.remove()
    return results


def _guarded(name: str, job: Callable[[], int]) -> int:
    """One job's result; a failing job is logged and rolled back (-1) without stopping the others."""
    try:
        return job()
    except Exception:
        log.exception("scheduler job %s failed", name)
        db.session.rollback()
        return -1


def _run_tick(app: Flask) -> None:
    with app.app_context():
        heartbeat.beat()
        _guarded("forget_stale_heartbeats", heartbeat.forget_stale)
        tick()


def _run_webhooks(app: Flask) -> None:
    with app.app_context():
        heartbeat.beat(throttled=True)
        _guarded("apply_webhooks", lambda: len(apply_webhooks()))
        db.session.remove()


def _add_job(scheduler, app: Flask) -> None:
    """The full tick, and the webhook inbox on its own short interval: a payment is applied within a second
    or two of its webhook even while the tick is busy sending a thousand reminders."""
    for job, seconds, name in (
        (_run_tick, settings(app).SCHEDULER_TICK_SECONDS, "tick"),
        (_run_webhooks, settings(app).WEBHOOK_POLL_SECONDS, "webhooks"),
    ):
        scheduler.add_job(job, "interval", args=[app], seconds=seconds, id=name, max_instances=1, coalesce=True)


def start_in_process(app: Flask) -> None:
    """For the development server: a background thread, started once per process."""
    with _started_lock:
        if app.extensions.get("webinar_pay.scheduler"):
            return
        scheduler = BackgroundScheduler(daemon=True)
        _add_job(scheduler, app)
        scheduler.start()
        app.extensions["webinar_pay.scheduler"] = scheduler
        log.info("scheduler running in-process every %ss", settings(app).SCHEDULER_TICK_SECONDS)


def run_forever(app: Flask) -> None:
    scheduler = BlockingScheduler()
    _add_job(scheduler, app)
    with app.app_context():
        heartbeat.start()
        db.session.remove()
    log.info("worker started: ticking every %ss", settings(app).SCHEDULER_TICK_SECONDS)
    _run_tick(app)
    scheduler.start()
