"""Machine-facing endpoints: the RFC 8908 Captive Portal API and health checks."""
from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, url_for

from . import sessions
from .delivery import state as delivery_state
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


#: Each delivery worker's heartbeat: consumer name -> unix time, written once per loop.
WORKERS = "portal:{{p{prov}}}:workers"


@bp.get("/readyz")
def readyz():
    """Readiness: a complaint sent now would be kept (Redis answers, or the spool can take it).

    Redis down alone is not "not ready" (the portal fails open and spools), nor is a stale
    delivery worker (residents are still served; complaints wait): both show in the body for
    monitoring. One pipelined Redis round trip and a few stat calls, so it stays cheap.
    """
    now = time.time()
    config = current_app.config
    spool = current_app.extensions["portal_spool"]
    spool_stats = spool.stats(now)
    body = {"status": "ready", "redis": "up", "spool_pending": spool_stats["bytes"] > 0, "spool": spool_stats}
    keys = delivery_state.keys(config["PROVINCE"])
    starts = []
    try:
        with raw_client().pipeline(transaction=False) as pipe:
            pipe.hgetall(WORKERS.format(prov=config["PROVINCE"]))
            pipe.xrange(keys["stream"], count=1)
            pipe.zrange(keys["undelivered"], 0, 0, withscores=True)
            beats, first, undelivered = pipe.execute()
    except DOWN_ERRORS:
        body["redis"] = "down"
        beats = None
    else:
        starts += [int(first[0][0].split(b"-")[0]) / 1000] if first else []
        starts += [score for _, score in undelivered]
    body["worker"] = _worker_state(beats, now, float(config["WORKER_STALE_SECONDS"]))
    if spool_stats["oldest_age_seconds"] is not None:
        starts.append(now - spool_stats["oldest_age_seconds"])  # the spool's oldest record, at the latest
    body["oldest_waiting_complaint_seconds"] = round(max(0.0, now - min(starts)), 1) if starts else None
    if body["redis"] == "down" and not _writable(spool.directory):
        body["status"] = "not ready"
        return body, 503
    return body


def _worker_state(beats: dict | None, now: float, stale_after: float) -> dict:
    if beats is None:
        return {"last_seen_seconds_ago": None, "stale": None}  # unknown while Redis is down
    ages = {name.decode(): round(max(0.0, now - float(seen)), 1) for name, seen in beats.items()}
    last = min(ages.values()) if ages else None
    return {"last_seen_seconds_ago": last, "stale": last is None or last > stale_after, "consumers": ages}


def _writable(directory: Path) -> bool:
    """Whether the spool could be written: the directory, or its nearest existing parent."""
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask on every page; answer with nothing rather than a 404 page over a weak link."""
    return "", 204, {"Cache-Control": "public, max-age=604800"}


@bp.get("/")
def home():
    """Where a resident lands without a gateway redirect: point them at the status lookup."""
    from flask import redirect

    return redirect(url_for("status.lookup"), code=302)
