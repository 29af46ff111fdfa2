"""Accepting a complaint: abuse checks, sealing personal data, and storing it durably.

A complaint is shown as received only after it is in the fsync'd journal of
this machine and in Redis (AOF, ``appendfsync everysec``), or, when Redis is
unreachable, in the fsync'd local spool, from which it moves to Redis by
itself. The journal covers the second a power cut can take from Redis
(:mod:`portal.complaints.journal`). The tracking number is derived from the form's nonce, so a
double tap or a resent form stores one complaint and shows the same receipt.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time

from flask import current_app
from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer

from .. import contact_index, events, limits
from ..crypto import get_crypto
from ..redis import DOWN_ERRORS, NotReplicatedError, get_redis, raw_client, report_failure, report_success
from ..tracking import ALPHABET, check_symbol
from . import store
from .journal import Journal

log = logging.getLogger(__name__)


#: Seconds a form stamp stays good, and how far ahead of this server's clock another node's may be.
STAMP_MAX_AGE = 86400
STAMP_CLOCK_SKEW = 60


def _signer() -> Signer:
    return stamp_signer(current_app.config["SECRET_KEY"])


def stamp_signer(secret: str) -> Signer:
    """The signer of form stamps under *secret* (``SECRET_KEY``)."""
    # A plain signature over "<ms>-<nonce>": the timed JSON serializer used before cost a JSON
    # dump, a zlib attempt and two HMACs per form, a third of the blank form's time (issue 14).
    return Signer(secret, salt="complaint-form-stamp", digest_method=hashlib.sha256)


def new_form_stamp(signer: Signer | None = None) -> str:
    """Return the signed start time and nonce that the form carries."""
    value = f"{int(time.time() * 1000)}-{secrets.token_urlsafe(9)}"
    return (signer or _signer()).sign(value).decode()


def read_form_stamp(stamp: str) -> tuple[float, str] | None:
    """Return (started, nonce) from a stamp, or None if it was tampered with or is a day old."""
    try:
        millis, nonce = _signer().unsign(stamp or "").decode().split("-", 1)
        started = int(millis) / 1000
    except (BadSignature, ValueError, UnicodeDecodeError):
        return _read_timed_stamp(stamp)
    if not -STAMP_CLOCK_SKEW <= time.time() - started <= STAMP_MAX_AGE:
        return None
    return started, nonce


def _read_timed_stamp(stamp: str) -> tuple[float, str] | None:
    """A stamp in the format before issue 14's (a form opened before the upgrade, sent after).

    Still read for a day after an upgrade, so a resent form keeps its nonce, and so its tracking
    number: a form sent again is the same complaint, never a second one. Remove after a release.
    """
    try:
        started, nonce = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="complaint-form").loads(
            stamp or "", max_age=STAMP_MAX_AGE)
        return float(started), str(nonce)
    except (BadSignature, ValueError, TypeError):
        return None


def tracking_for(nonce: str) -> str:
    """Derive the tracking number of a form instance from its nonce."""
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), nonce.encode(), hashlib.sha256).digest()
    body = "".join(ALPHABET[b % 32] for b in digest[:8])
    return body + check_symbol(body)


def check_post(tracking: str, *, honeypot: str, started: float, session) -> tuple[limits.PostCheck, str]:
    """The checks of a complaint post, one round trip: ``(check, hold reason)``.

    The reason is why a valid new complaint must wait for review, or "" to forward it. The
    honeypot and the fill time are checked first and cost no quota; a complaint within them is
    counted against its device's and site's hourly quota (``portal.limits``) in the same trip
    that reads whether it was stored before. A caught complaint is still stored, never dropped.
    """
    reason = ""
    if honeypot:
        reason = "honeypot"
    elif time.time() - started < current_app.config["MIN_FILL_SECONDS"]:
        reason = "too_fast"
    key = store.record_key(current_app.config["PROVINCE"], tracking)
    check = limits.check_complaint_post(key, session, count_quota=not reason)
    return check, reason or check.quota


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
        "variant": getattr(session, "variant", ""),
        "lang": session.lang,
        "device": session.device,
        "created_at": f"{now:.3f}",
    }
    sealed_text = crypto.seal({"body": form.body.data.strip(), "place": (form.place.data or "").strip()})
    name, contact = (form.name.data or "").strip(), (form.contact.data or "").strip()
    sealed_contact = crypto.seal({"name": name, "contact": contact}) if (name or contact) else ""
    return store.StoredComplaint(plain=plain, sealed_text=sealed_text, sealed_contact=sealed_contact,
                                 contact_index=contact_index.of(contact))


def record_form_opened(session) -> None:
    """Count the complaint form being opened (funnel step ``form``); fail open."""
    events.record(form_opened(session))  # counted in the background batch (or spooled by it while Redis is down)


def form_opened(session, *, site=None, province: str | None = None) -> dict:
    """The funnel event of *session*'s form being opened (*site* and *province* given outside a request)."""
    return events.make_event("form", site_id=session.site_id, campaign=session.campaign, lang=session.lang,
                             device=session.device, variant=getattr(session, "variant", ""), site=site,
                             province=province)


def save(complaint: store.StoredComplaint) -> str:
    """Store a complaint durably (Redis, else the local spool); return ``"redis"`` or ``"spool"``.

    A held complaint (``held_reason`` set) goes to the review queue instead of the stream.
    """
    province = current_app.config["PROVINCE"]
    kind = "complaint_held" if complaint.held_reason else "complaint"
    event = events.make_event(kind, site_id=complaint.plain["site_id"],
                              campaign=complaint.plain["campaign"], lang=complaint.plain["lang"],
                              device=complaint.plain["device"], variant=complaint.plain.get("variant", ""))
    replicas = {"replicas": current_app.config["REDIS_MIN_REPLICAS"],
                "wait_timeout": current_app.config["REDIS_WAIT_TIMEOUT"]}
    # On the disk before anything else: Redis fsyncs once a second, the receipt cannot wait for that.
    try:
        journal().append(complaint.to_spool())
    except OSError as error:  # a full or failing local disk: Redis (and its replicas) still take it
        log.error("complaint %s not journaled: %s", complaint.plain["tracking"], type(error).__name__)
    try:
        client = get_redis()
        created = store.write(client, province, complaint, **replicas)
        if created:
            events.record(event)
        report_success()
        if complaint.held_reason:
            log.info("complaint %s held for review: %s (site %s)", complaint.plain["tracking"],
                     complaint.held_reason, complaint.plain["site_id"])
        else:
            log.info("complaint %s stored (site %s)", complaint.plain["tracking"], complaint.plain["site_id"])
        _replay_if_pending()
        if journal().due():
            try:
                maintain_journal(client)
            except DOWN_ERRORS:
                report_failure()
        return "redis"
    except NotReplicatedError as error:
        # On the primary but on no replica yet: a failover now could lose it, so the receipt
        # rests on the spool too. The replay finds the record (no second stream entry) or,
        # if the failover lost it, writes it again. Redis answered: the breaker stays closed.
        reason = f"not replicated ({error})"
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


def journal() -> Journal:
    """This machine's complaint journal (``<VAR_DIR>/journal``)."""
    found = current_app.extensions.get("portal_journal")
    if found is None:
        found = current_app.extensions["portal_journal"] = Journal(
            os.path.join(current_app.config["VAR_DIR"], "journal"))
    return found


def maintain_journal(client) -> int:
    """Rewrite the journal into a Redis that restarted since we last looked, else trim it.

    Returns how many complaints were written again (0 when Redis kept running).
    """
    province = current_app.config["PROVINCE"]
    info = client.info("server")
    return journal().maintain(str(info["run_id"]), lambda data: store.write(
        client, province, store.StoredComplaint.from_spool(data)))


def replay_spool() -> int:
    """Move spooled complaints and events into Redis; return how many records moved."""
    client = raw_client()
    province = current_app.config["PROVINCE"]
    spool = current_app.extensions["portal_spool"]
    try:  # the worker calls this each turn: a restarted Redis gets its last complaints back
        maintain_journal(client)
    except DOWN_ERRORS:
        pass  # Redis is down: the journal waits, and the spool below cannot move either
    replicas = {"replicas": current_app.config["REDIS_MIN_REPLICAS"],
                "wait_timeout": current_app.config["REDIS_WAIT_TIMEOUT"]}
    # The spool line goes only once a replica has the complaint too (NotReplicatedError stops the replay).
    try:
        return spool.replay({
            "complaint": lambda data: store.write(client, province, store.StoredComplaint.from_spool(data), **replicas),
            "event": lambda data: events.replay_event(client, data),
        })
    except NotReplicatedError as error:
        # Not "Redis down": the worker's turn goes on (deliveries continue); the file stays for the next try.
        log.warning("spool replay paused: %s", error)
        return 0
