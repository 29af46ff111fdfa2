"""The HTTP API FreeRADIUS's rlm_rest calls in RADIUS login mode (deploy/freeradius/).

- ``POST /radius/authorize``: 200 with ``control:Cleartext-Password`` and the reply
  attributes for a live credential used from its own device; FreeRADIUS's pap/chap
  then check the password. 404 for an unknown, used or expired user, 401 for a device
  or site mismatch (both end in Access-Reject).
- ``POST /radius/post-auth``: uses the credential up (one login per credential).
- ``POST /radius/accounting``: start/interim/stop against the pseudonymous device id.

Bodies are rlm_rest's ``body = 'json'``: ``{"<Attr>": {"type": …, "value": [...]}}``.
Every call must carry ``Authorization: Bearer <PORTAL_RADIUS_API_TOKEN>``.
"""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, abort, current_app, jsonify, request

from hotspot_hooks.urls import normalize_mac

from . import radius
from .crypto import get_crypto
from .redis import DOWN_ERRORS, get_redis, report_failure

bp = Blueprint("radius_api", __name__, url_prefix="/radius")
log = logging.getLogger(__name__)

_STATUS = {"start": "start", "interim-update": "interim", "alive": "interim", "stop": "stop"}


@bp.before_request
def require_token():
    """Refuse every call without the shared secret (or when none is configured)."""
    # str(): from_prefixed_env parses an all-digit secret as a number.
    expected = str(current_app.config.get("RADIUS_API_TOKEN") or "")
    given = request.headers.get("Authorization", "")
    if not expected:
        log.warning("radius API called but PORTAL_RADIUS_API_TOKEN is not set: refused")
        abort(403)
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        log.warning("radius API call with a missing or wrong token: refused")
        abort(403)


def attribute(name: str) -> str:
    """The first value of request attribute *name* in rlm_rest's JSON body, or ``""``."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return ""
    entry = body.get(name)
    if isinstance(entry, dict):
        entry = entry.get("value")
    if isinstance(entry, list):
        entry = entry[0] if entry else ""
    return "" if entry is None else str(entry)


def _octets(direction: str) -> int:
    """Acct-<direction>-Octets plus its gigawords, as one byte count."""
    return _int(attribute(f"Acct-{direction}-Gigawords")) * radius.GIGAWORD + _int(attribute(f"Acct-{direction}-Octets"))


def _int(value: str) -> int:
    try:
        return max(0, int(value))
    except ValueError:
        return 0


def _refuse(status: int, reason: str, site: str = ""):
    # Neither the user name (anyone can type one) nor the MAC goes to the log.
    log.info("radius login refused at site %s: %s", site or "unknown", reason)
    return jsonify({"control:Auth-Type": "Reject"}), status


def _other_site(credential: radius.Credential) -> bool:
    """True when the NAS names a registered gateway of another site than the credential's."""
    nas = attribute("NAS-Identifier")
    if not nas or not credential.site_id:
        return False
    sites = current_app.extensions["portal_sites"]
    site = sites.find(get_redis(), credential.vendor, nas)
    return site is not None and site.site_id != credential.site_id


@bp.post("/authorize")
def authorize():
    """Tell FreeRADIUS the password and limits of a live credential, or refuse it."""
    try:
        client = get_redis()
        credential = radius.lookup(client, attribute("User-Name"))
        if credential is None:
            return _refuse(404, "unknown, used or expired credential")
        # The credential keeps the device id (keyed hash of the MAC), never the MAC itself.
        calling = normalize_mac(attribute("Calling-Station-Id"))
        if not calling or get_crypto().device_id(calling) != credential.device:
            return _refuse(401, "device does not match the portal session", credential.site_id)
        if _other_site(credential):
            return _refuse(401, "gateway of another site", credential.site_id)
    except DOWN_ERRORS:
        report_failure()
        log.error("radius authorize: Redis unavailable, refusing")
        return jsonify({}), 503
    reply = {"control:Cleartext-Password": credential.password}
    reply.update(radius.reply_attributes(credential, interim_interval=int(current_app.config["RADIUS_INTERIM_INTERVAL"])))
    return jsonify(reply)


@bp.post("/post-auth")
def post_auth():
    """The gateway accepted the login: use the credential up and open its accounting record."""
    try:
        client = get_redis()
        credential = radius.claim(client, attribute("User-Name"))
        if credential is None:
            # Two logins raced with one credential: only the first may pass.
            return _refuse(401, "credential already used")
        radius.open_accounting(client, credential)
    except DOWN_ERRORS:
        report_failure()
        log.error("radius post-auth: Redis unavailable, refusing")
        return jsonify({}), 503
    log.info("radius login accepted at site %s (%s)", credential.site_id or "unknown", credential.vendor)
    return "", 204


@bp.post("/accounting")
def accounting():
    """Record start, interim and stop; unknown users are acknowledged so the NAS stops resending."""
    status = _STATUS.get(attribute("Acct-Status-Type").lower())
    if status is None:
        return "", 204  # Accounting-On/Off: the NAS rebooted; nothing of ours to update
    fields = {"session_time": str(_int(attribute("Acct-Session-Time")))}
    if status != "start":
        fields["input_octets"] = str(_octets("Input"))
        fields["output_octets"] = str(_octets("Output"))
    if status == "stop":
        fields["terminate_cause"] = attribute("Acct-Terminate-Cause")[:64]
    try:
        known = radius.record_accounting(get_redis(), attribute("User-Name"), status, fields)
    except DOWN_ERRORS:
        report_failure()
        log.error("radius accounting: Redis unavailable; the NAS will resend")
        return jsonify({}), 503
    if not known:
        log.info("radius accounting %s for a login the portal does not know: ignored", status)
    return "", 204
