"""Readiness for load balancers: the database answers and its schema is the one this code was written for."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from .heartbeat import worker_status

log = logging.getLogger(__name__)


@dataclass
class Readiness:
    """`error` is None when ready; `details` is what the JSON answer shows either way."""

    error: str | None = None
    message: str = ""
    details: dict = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.error is None


def _scripts() -> tuple[set[str], set[str]]:
    """(heads, every revision) of the migration scripts shipped with this code, read once per process."""
    scripts = current_app.extensions.get("webinar_pay.migration_scripts")
    if scripts is None:
        directory = ScriptDirectory(current_app.extensions["migrate"].directory)
        scripts = set(directory.get_heads()), {script.revision for script in directory.walk_revisions()}
        current_app.extensions["webinar_pay.migration_scripts"] = scripts
    return scripts


def readiness() -> Readiness:
    """Ready: the database answers and is migrated to the head of the scripts. The worker is reported, not
    required: without it the site still serves pages and stores webhooks; payments wait until one runs."""
    heads, known = _scripts()
    head = sorted(heads)
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("readiness: the database does not answer", exc_info=True)
        return Readiness("database_unreachable", "The database does not answer.", {"database": "unreachable"})
    try:
        current = sorted(db.session.scalars(text("SELECT version_num FROM alembic_version")).all())
    except SQLAlchemyError:
        db.session.rollback()
        current = []
    migrations = {"current": current, "head": head}
    if set(current) - known:
        message = (
            f"The database schema is at {', '.join(current)}, newer than this code ({', '.join(head)}): "
            "deploy the version that migrated it."
        )
        return Readiness("schema_newer_than_code", message, {"database": "ok", "migrations": migrations})
    if current != head:
        message = (
            f"The database schema is at {', '.join(current) or 'nothing'} and this code expects {', '.join(head)}: "
            "run `flask --app app db upgrade`."
        )
        return Readiness("migrations_pending", message, {"database": "ok", "migrations": migrations})
    try:
        worker = worker_status().as_json()
    except SQLAlchemyError:
        db.session.rollback()
        worker = {"ok": False, "last_beat": None}
    return Readiness(details={"database": "ok", "migrations": migrations, "worker": worker})
