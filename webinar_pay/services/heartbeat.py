"""Worker heartbeats: every `flask worker` process records that it is alive, so that `flask worker --check`,
`/readyz` and whoever runs them know whether payments, emails and enrolments are being processed."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..config import settings
from ..extensions import db
from ..models import WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)

# A webhook poll runs every second or so: its beat is written at most this often. Ticks always write theirs.
POLL_BEAT_SECONDS = 5.0
# A worker is alive when it beat within this many tick intervals.
STALE_AFTER_TICKS = 3
# Rows of processes that stopped beating this long ago are deleted by the living workers.
FORGET_AFTER = timedelta(hours=1)

_last_write: dict[tuple[str, int], float] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class WorkerStatus:
    """The freshest heartbeat, and whether it is fresh enough (`stale_after` is the allowed age)."""

    last_beat: datetime | None
    host: str | None
    pid: int | None
    alive: int
    stale_after: timedelta
    now: datetime

    @property
    def ok(self) -> bool:
        return self.last_beat is not None and self.now - self.last_beat <= self.stale_after

    def as_json(self) -> dict:
        return {
            "ok": self.ok,
            "last_beat": self.last_beat.isoformat() if self.last_beat else None,
            "seconds_ago": int((self.now - self.last_beat).total_seconds()) if self.last_beat else None,
            "alive": self.alive,
            "stale_after_seconds": int(self.stale_after.total_seconds()),
        }

    def describe(self) -> str:
        """One line for an operator or a monitoring check."""
        limit = int(self.stale_after.total_seconds())
        if self.last_beat is None:
            return "no worker has ever run here: start `flask --app app worker`"
        ago = int((self.now - self.last_beat).total_seconds())
        where = f"{self.last_beat:%Y-%m-%d %H:%M:%S} UTC, {ago} s ago, from {self.host} pid {self.pid}"
        if self.ok:
            return f"worker ok: {self.alive} alive, last beat {where}"
        return f"no worker alive: the last beat was {where}; one is expected every {limit} s at most"


def _process() -> tuple[str, int]:
    return socket.gethostname()[:255], os.getpid()


def stale_after() -> timedelta:
    """Three ticks; never less than three poll beats, which keep a worker fresh while a long tick runs."""
    return timedelta(seconds=STALE_AFTER_TICKS * max(settings().SCHEDULER_TICK_SECONDS, POLL_BEAT_SECONDS))


def beat(now: datetime | None = None, *, throttled: bool = False) -> bool:
    """Record that this process is alive; commits. Never raises: a worker that cannot reach its database keeps
    trying its jobs, and its silence is what the checks report. Returns whether a beat was written."""
    host, pid = _process()
    with _lock:
        if throttled and time.monotonic() - _last_write.get((host, pid), float("-inf")) < POLL_BEAT_SECONDS:
            return False
        _last_write[(host, pid)] = time.monotonic()
    now = now or utcnow()
    try:
        updated = db.session.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.host == host, WorkerHeartbeat.pid == pid)
            .values(last_beat_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not updated:
            db.session.add(WorkerHeartbeat(host=host, pid=pid, started_at=now, last_beat_at=now))
        db.session.commit()
    except IntegrityError:  # the other job's thread wrote this process's first beat at the same moment
        db.session.rollback()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not record the worker heartbeat", exc_info=True)
        return False
    return True


def start(now: datetime | None = None) -> None:
    """A worker process starts: its row starts afresh (a host may reuse a pid), and long-gone rows go."""
    host, pid = _process()
    now = now or utcnow()
    db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.host == host, WorkerHeartbeat.pid == pid))
    db.session.add(WorkerHeartbeat(host=host, pid=pid, started_at=now, last_beat_at=now))
    db.session.commit()
    with _lock:
        _last_write[(host, pid)] = time.monotonic()
    forget_stale(now)


def forget_stale(now: datetime | None = None) -> int:
    """Delete the rows of processes that stopped beating long ago; commits. Returns how many went."""
    cutoff = (now or utcnow()) - FORGET_AFTER
    gone = delete(WorkerHeartbeat).where(WorkerHeartbeat.last_beat_at < cutoff)
    deleted = db.session.execute(gone.execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return deleted


def worker_status(now: datetime | None = None) -> WorkerStatus:
    now = now or utcnow()
    limit = stale_after()
    latest = db.session.scalar(select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_beat_at.desc()).limit(1))
    alive = len(db.session.scalars(select(WorkerHeartbeat.id).where(WorkerHeartbeat.last_beat_at >= now - limit)).all())
    return WorkerStatus(
        last_beat=latest.last_beat_at if latest else None,
        host=latest.host if latest else None,
        pid=latest.pid if latest else None,
        alive=alive,
        stale_after=limit,
        now=now,
    )
