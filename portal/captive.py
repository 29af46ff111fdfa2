"""Machine-facing endpoints: the RFC 8908 Captive Portal API and health checks."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request, url_for

from . import sessions
from .redis import DOWN_ERRORS, raw_client

bp = Blueprint("captive", __name__)
CAPTIVE_JSON = "application/captive+json"


def _captive_response(body: dict):
    response = jsonify(body)
    response.mimetype = CAPTIVE_JSON
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _public(path: str) -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


@bp.get("/api/captive")
@bp.get("/api/captive/<token>")
def captive_api(token: str | None = None):
    """RFC 8908 state of the current portal session (``?session=`` or path)."""
    token = token or request.args.get("session", "")
    session = sessions.load(token) if token else None
    body = {"captive": True, "venue-info-url": _public(url_for("status.lookup"))}
    if session is None:
        body["user-portal-url"] = _public("/")
        return _captive_response(body)
    body["user-portal-url"] = _public(url_for("splash.landing", token=session.token))
    if session.granted:
        remaining = int(session.granted + session.minutes * 60 - time.time())
        if remaining > 0:
            body = {"captive": False, "seconds-remaining": remaining,
                    "venue-info-url": body["venue-info-url"], "can-extend-session": False}
    return _captive_response(body)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. No dependency checks (a Redis blip must not restart us)."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Readiness: report Redis, but stay ready when it is down, since the portal fails open."""
    try:
        raw_client().ping()
        redis_state = "up"
    except DOWN_ERRORS:
        redis_state = "down"
    spool = current_app.extensions["portal_spool"]
    return {"status": "ready", "redis": redis_state, "spool_pending": spool.pending()}


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask on every page; answer with nothing rather than a 404 page over a weak link."""
    return "", 204, {"Cache-Control": "public, max-age=604800"}


@bp.get("/")
def home():
    """Where a resident lands without a gateway redirect: point them at the status lookup."""
    from flask import redirect

    return redirect(url_for("status.lookup"), code=302)
