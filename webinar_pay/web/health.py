"""Health checks for load balancers and monitoring: `/healthz` (the process answers) and `/readyz` (it can serve:
database reachable, migrations current; the worker's heartbeat is reported). No session, no rate limit."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..extensions import limiter
from ..services.health import readiness

bp = Blueprint("health", __name__)


def _no_store(response, status: int = 200):
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
@limiter.exempt
def healthz():
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
@limiter.exempt
def readyz():
    result = readiness()
    if result.ready:
        return _no_store(jsonify(status="ready", **result.details))
    body = {"status": "unavailable", "error": result.error, "message": result.message, **result.details}
    return _no_store(jsonify(body), 503)
