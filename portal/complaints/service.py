"""Accepting a complaint: abuse checks, sealing personal data, and storing it durably.

A complaint is shown as received only after it is in Redis (AOF) or, when
Redis is unreachable, in the fsync'd local spool, from which it moves to
Redis by itself. The tracking number is derived from the form's nonce, so a
double tap or a resent form stores one complaint and shows the same receipt.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import events
from ..crypto import get_crypto
from ..redis import DOWN_ERRORS, get_redis, raw_client, report_failure, report_success
from ..tracking import ALPHABET, check_symbol
from . import store

log = logging.getLogger(__name__)
RATE_KEY = "portal:rl:{}:{}:{}"


class TooFast(Exception):
    """The form came back sooner than a person can fill it."""


class RateLimited(Exception):
    """This device or site sent too many complaints this hour."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="complaint-form")


def new_form_stamp() -> str:
    """Return the signed start time and nonce that the form carries."""
    return _serializer().dumps([time.time(), secrets.token_urlsafe(9)])


def read_form_stamp(stamp: str) -> tuple[float, str] | None:
    """Return (started, nonce) from a stamp, or None if it was tampered with or is a day old."""
    try:
        started, nonce = _serializer().loads(stamp or "", max_age=86400)
        return float(started), str(nonce)
    except (BadSignature, ValueError, TypeError):
        return None


def tracking_for(nonce: str) -> str:
    """Derive the tracking number of a form instance from its nonce."""
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), nonce.encode(), hashlib.sha256).digest()
    body = "".join(ALPHABET[b % 32] for b in digest[:8])
    return body + check_symbol(body)


def check_fill_time(started: float) -> None:
    """Raise TooFast when the form was filled in under ``MIN_FILL_SECONDS``."""
    if time.time() - started < current_app.config["MIN_FILL_SECONDS"]:
        raise TooFast()


def check_rate(*, device: str, site_id: str) -> None:
    """Count this complaint against the device's and the site's hourly limits.

    Fails open: if Redis is down the complaint is accepted (and spooled).
    """
    hour = int(time.time() // 3600)
    keys = []
    if device:
        keys.append((RATE_KEY.format("dev", device, hour), current_app.config["DEVICE_LIMIT"]))
    keys.append((RATE_KEY.format("site", site_id or "unknown", hour), current_app.config["SITE_LIMIT"]))
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            for key, _ in keys:
                pipe.incr(key)
                pipe.expire(key, 3600)
            counts = pipe.execute()[::2]
    except DOWN_ERRORS:
        report_failure()
        return
    if any(count > limit for count, (_, limit) in zip(counts, keys)):
        raise RateLimited()


def build(*, tracking: str, form, session, site) -> store.StoredComplaint:
    """Seal a validated form into a storable complaint."""
    crypto = get_crypto()
    now = time.time()
    location = {
        "desa": form.desa.data.strip(), "kecamatan": form.kecamatan.data.strip(),
        "kabupaten": form.kabupaten.data.strip(),
    }
    # Keep the official codes only where the resident left the pre-filled place unchanged.
    codes = {}
    if site:
        for level in ("desa", "kecamatan", "kabupaten"):
            codes[f"{level}_kode"] = getattr(site, f"{level}_kode") if location[level] == getattr(site, level) else ""
    plain = {
        "tracking": tracking,
        "kind": form.kind.data,
        "category": form.category.data,
        "incident_date": form.incident_date.data.strip(),
        **location,
        **codes,
        "anonim": "1" if form.anonim.data else "0",
        "rahasia": "1" if form.rahasia.data else "0",
        "consent_version": current_app.config["PRIVACY_NOTICE_VERSION"],
        "consented_at": f"{now:.0f}",
        "site_id": session.site_id,
        "campaign": session.campaign,
        "lang": session.lang,
        "device": session.device,
        "created_at": f"{now:.3f}",
    }
    sealed_text = crypto.seal({"body": form.body.data.strip(), "place": (form.place.data or "").strip()})
    name, contact = (form.name.data or "").strip(), (form.contact.data or "").strip()
    sealed_contact = crypto.seal({"name": name, "contact": contact}) if (name or contact) else ""
    return store.StoredComplaint(plain=plain, sealed_text=sealed_text, sealed_contact=sealed_contact)


def save(complaint: store.StoredComplaint) -> str:
    """Store a complaint durably (Redis, else the local spool); return ``"redis"`` or ``"spool"``."""
    province = current_app.config["PROVINCE"]
    event = events.make_event("complaint", site_id=complaint.plain["site_id"],
                              campaign=complaint.plain["campaign"], lang=complaint.plain["lang"],
                              device=complaint.plain["device"])
    try:
        client = get_redis()
        created = store.write(client, province, complaint)
        if created:
            events.replay_event(client, event)
        report_success()
        log.info("complaint %s stored (site %s)", complaint.plain["tracking"], complaint.plain["site_id"])
        _replay_if_pending()
        return "redis"
    except DOWN_ERRORS as error:
        report_failure()
        reason = type(error).__name__
    spool = current_app.extensions["portal_spool"]
    spool.append("complaint", complaint.to_spool())
    spool.append("event", event)
    log.warning("complaint %s spooled: Redis unreachable (%s)", complaint.plain["tracking"], reason)
    return "spool"


def _replay_if_pending() -> None:
    """Redis answers again: move what was spooled meanwhile (the worker does this too)."""
    if current_app.extensions["portal_spool"].pending():
        try:
            replay_spool()
        except DOWN_ERRORS:
            report_failure()


def replay_spool() -> int:
    """Move spooled complaints and events into Redis; return how many records moved."""
    client = raw_client()
    province = current_app.config["PROVINCE"]
    spool = current_app.extensions["portal_spool"]
    return spool.replay({
        "complaint": lambda data: store.write(client, province, store.StoredComplaint.from_spool(data)),
        "event": lambda data: events.replay_event(client, data),
    })
