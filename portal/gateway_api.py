"""What routers (not residents) call: openNDS authmon, WiFiDog auth/ping/portal, heartbeats.

The portal side of two resident-journey steps that need Redis, which adapters may not
touch, is in ``gateway_steps.py`` (the resident journey uses it too):

- replay protection: a signed hook names a nonce (:meth:`replay_key`) and the portal
  claims it once with ``SET … NX EX``;
- ``Grant(kind="gateway")``: the adapter asks the portal to tell the router. For
  openNDS authmon the entry is queued per gateway until the router's poll
  acknowledges it; for WiFiDog the token is bound to the session's device.

openNDS authmon polls the FAS URL, so the operator kit puts the site and its secret
``authmon_key`` in the FAS path (``/hotspot/opennds/<site_id>/<authmon_key>``): a poll
only sees the queue of the site whose key it names, and an unregistered gateway has
no queue at all. (The path is visible to the site's residents, who are redirected to
it: the key keeps everyone else out of the site's queue.)

Keys: ``portal:nonce:<vendor>:<hash>``, ``portal:authmon:<site_id>:<gatewayhash>`` (hash
rhid -> "<queued at> <entry>"), ``portal:authmon:ack:<rhid>``, ``portal:wifidog:tok:<hash>``.
Each is one key per operation, so all of this works unchanged on Redis Cluster.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import time
from urllib.parse import quote

from flask import Blueprint, current_app, redirect, render_template, request, url_for

import hotspot_hooks
from hotspot_hooks import Grant, HookError
from hotspot_hooks.urls import normalize_mac
from hotspot_hooks.wifidog import auth_reply

from . import gateway_steps, heartbeat, splash, visits
from .crypto import InvalidToken, get_crypto
from .errors import render_error
from .redis import DOWN_ERRORS, get_redis, report_failure
from .site_secrets import open_secrets

bp = Blueprint("gateway_api", __name__)
log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TIME = re.compile(r"^[0-9]{9,11}$")
_AUTHMON_KEY = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")


def _text(body: str, status: int = 200):
    return body, status, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


@bp.get("/p/<token>/wait")
def wait(token: str):
    """Until the router has fetched the authorization, ask the browser to check again."""
    session, error = visits.load_session_or_expired(token)
    if error:
        return error
    site = visits.site_of(session)
    retry = url_for("splash.landing", token=session.token)
    try:
        grant = hotspot_hooks.get_hook(session.arrival.vendor).authorize(session.arrival, visits.site_settings(site))
        if grant.kind != "gateway" or grant.fields.get("protocol") != "authmon":
            return redirect(retry, code=303)
        client = get_redis()
        if client.exists(gateway_steps.AUTHMON_ACK.format(grant.fields["id"])):
            return render_template("splash/online.html", grant=Grant(kind="done", url=session.arrival.original_url),
                                   **visits.page_context(session, site))
        pending = client.hexists(gateway_steps.AUTHMON_QUEUE.format(session.site_id, grant.fields["queue"]), grant.fields["id"])
    except (HookError, *DOWN_ERRORS):
        pending = False
    tries = request.args.get("n", type=int) or 1
    if pending and tries < gateway_steps.WAIT_TRIES:
        return render_template("splash/gateway_wait.html", refresh=gateway_steps.WAIT_REFRESH,
                               wait_url=url_for("gateway_api.wait", token=session.token, n=tries + 1),
                               **visits.page_context(session, site))
    log.warning("authmon grant at site %s was not fetched by the router", session.site_id or "unknown")
    return render_error("errors/grant_failed.html", 504, visit=session, retry_url=retry)


# --- openNDS authmon ----------------------------------------------------------------------------

@bp.post("/hotspot/opennds")
def opennds_post():
    """A resident's arrival; an authmon poll here lacks the site key and is refused."""
    if "auth_get" in request.form:
        return _authmon_without_key()
    return splash.arrival("opennds")


@bp.route("/hotspot/opennds/<site_id>", methods=["GET", "POST"])
def opennds_site(site_id: str):
    """The FAS path the kit configures for levels 0-2: residents arrive here."""
    if request.method == "POST" and "auth_get" in request.form:
        return _authmon_without_key()
    return splash.arrival("opennds")


@bp.route("/hotspot/opennds/<site_id>/<key>", methods=["GET", "POST"])
def opennds_site_path(site_id: str, key: str):
    """The FAS path the kit configures for authmon: residents arrive here, the router polls here."""
    if request.method == "POST" and "auth_get" in request.form:
        return authmon(site_id, key)
    return splash.arrival("opennds")


@bp.post("/gateway/opennds/authmon")
def _authmon_without_key():
    """The former keyless authmon endpoint: refused, with what to change on the router."""
    log.warning("openNDS authmon poll without a site key refused: the router needs the kit's faspath")
    return _text("ERROR: authmon needs /hotspot/opennds/<site_id>/<authmon_key> as faspath "
                 "(flask --app portal sites config <site_id>)", 403)


def _authmon_key_matches(site_id: str, key: str) -> bool:
    site = visits.site_cache().get(visits.redis_or_none(), site_id)
    if site is None or site.gateway_vendor != "opennds" or not _AUTHMON_KEY.match(key):
        return False
    expected = str(open_secrets(get_crypto(), site).get("authmon_key", ""))
    return bool(expected) and hmac.compare_digest(expected.encode(), key.encode())


def _authmon_payload(raw: str) -> str:
    # authmon sends "none" or "* rhid…" in clear (older) or base64 of it (newer).
    raw = raw.strip()
    if raw in ("", "none") or raw.startswith("*"):
        return raw
    try:
        return base64.b64decode(raw, validate=True).decode("ascii").strip()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return raw


def authmon(site_id: str, key: str):
    """Answer openNDS authmon for one site: clear, view (auth list or acknowledgements), list, deauthed."""
    if not _authmon_key_matches(site_id, key):
        # One answer for unknown sites and wrong keys.
        return _text("ERROR: unknown site or wrong authmon key in the FAS path", 403)
    action = request.form.get("auth_get", "")
    gatewayhash = request.form.get("gatewayhash", "").strip().lower()
    if not _HEX64.match(gatewayhash):
        return _text("ERROR: gatewayhash missing", 400)
    if action in ("deauthed", "custom"):
        return _text("ack")  # the payload names clients: neither kept nor logged
    if action not in ("clear", "view", "list"):
        return _text("ERROR: unknown auth_get", 400)
    queue = gateway_steps.AUTHMON_QUEUE.format(site_id, gatewayhash)
    payload = _authmon_payload(request.form.get("payload", "none"))
    try:
        client = get_redis()
        if action == "clear":
            client.delete(queue)
            return _text("ack")
        if payload.startswith("*"):
            return _text(_acknowledge(client, queue, payload[1:].split()))
        entries = _fresh_entries(client, queue)
        if action == "list" and entries:
            client.hdel(queue, *entries)
    except DOWN_ERRORS:
        report_failure()
        return _text("ERROR: portal storage unavailable", 503)
    # authmon reads "*" then one rawurlencoded entry per space (authmon.sh strips "* ").
    return _text("".join(["*", *(" " + quote(e, safe="") for e in entries.values())]))


def _fresh_entries(client, queue: str) -> dict[str, str]:
    """Return rhid -> entry of the queue, dropping entries older than gateway_steps.AUTHMON_TTL."""
    now, fresh, stale = time.time(), {}, []
    for rhid, value in client.hgetall(queue).items():
        queued, _, entry = value.decode().partition(" ")
        if now - float(queued) < gateway_steps.AUTHMON_TTL:
            fresh[rhid.decode()] = entry
        else:
            stale.append(rhid)
    if stale:
        client.hdel(queue, *stale)
    return fresh


def _acknowledge(client, queue: str, rhids: list[str]) -> str:
    """Drop acknowledged entries and remember them for the residents' wait pages."""
    rhids = [r for r in (x.lower() for x in rhids) if _HEX64.match(r)]
    with client.pipeline(transaction=False) as pipe:
        for rhid in rhids:
            pipe.hdel(queue, rhid)
        removed = pipe.execute()
    with client.pipeline(transaction=False) as pipe:
        for rhid, gone in zip(rhids, removed):
            if gone:  # only entries we queued: an ack cannot invent a grant
                pipe.set(gateway_steps.AUTHMON_ACK.format(rhid), "1", ex=gateway_steps.AUTHMON_TTL)
        pipe.execute()
    return "ack"


# --- WiFiDog -------------------------------------------------------------------------------------

@bp.route("/wifidog/login/", methods=["GET", "POST"])
def wifidog_login():
    """WiFiDog's default login path: the resident's arrival."""
    return splash.arrival("wifidog")


@bp.get("/wifidog/auth/")
def wifidog_auth():
    """Answer the gateway's token check with ``Auth: 1`` only for the granted device."""
    stage = request.args.get("stage", "")
    token = request.args.get("token", "")
    if not token or len(token) > 256:
        return _text(auth_reply(0))
    key = gateway_steps.WIFIDOG_TOKEN.format(gateway_steps.digest(token))
    try:
        client = get_redis()
        if stage == "logout":
            client.delete(key)
            return _text(auth_reply(0))
        raw = client.get(key)
    except DOWN_ERRORS:
        report_failure()
        return _text(auth_reply(-1))
    if raw is None:
        return _text(auth_reply(0))
    record = json.loads(raw)
    mac = normalize_mac(request.args.get("mac"))
    gateway = request.args.get("gw_id", "").strip().lower()
    if not mac or get_crypto().device_id(mac) != record["device"] or (gateway and gateway != record["gw"]):
        return _text(auth_reply(0))  # the token was granted to another device or gateway
    if time.time() > record["until"]:
        client.delete(key)
        return _text(auth_reply(0))
    return _text(auth_reply(1))


@bp.get("/wifidog/ping/")
def wifidog_ping():
    """Answer ``Pong`` and record the heartbeat of the gateway's site."""
    site = visits.find_site("wifidog", request.args.get("gw_id", "").strip())
    if site is not None:
        _record_heartbeat(site.site_id, heartbeat.clean_load(request.args.get("sys_load")), "wifidog")
    return _text("Pong")


@bp.get("/wifidog/portal/")
def wifidog_portal():
    """Where the gateway sends the browser after ``Auth: 1``."""
    site = visits.find_site("wifidog", request.args.get("gw_id", "").strip())
    return render_template("splash/online.html", grant=Grant(kind="done"), **gateway_steps.page(site))


# --- signed heartbeat ----------------------------------------------------------------------------

@bp.get("/gateway/heartbeat/<site_id>")
def signed_heartbeat(site_id: str):
    """Record a heartbeat whose HMAC ``sig`` matches the site's ``heartbeat_key``."""
    site = visits.site_cache().get(visits.redis_or_none(), site_id)
    try:
        key = visits.site_settings(site).secrets.get("heartbeat_key", "") if site else ""
    except (InvalidToken, ValueError):
        key = ""
    t, sig = request.args.get("t", ""), request.args.get("sig", "").lower()
    load = request.args.get("load", "")
    # Bytes: compare_digest raises TypeError on a str with non-ASCII characters (a 500).
    if not key or not hmac.compare_digest(heartbeat.signature(key, site_id, t, load if t else "").encode(),
                                          sig.encode()):
        return _text("forbidden", 403)  # one answer for unknown sites and bad signatures
    if t:
        if not _TIME.match(t) or abs(time.time() - int(t)) > heartbeat.MAX_SKEW:
            return _text("stale", 403)
        try:
            if not get_redis().set(gateway_steps.NONCE.format("heartbeat", gateway_steps.digest(f"{site_id}|{t}")), "1",
                                   nx=True, ex=2 * heartbeat.MAX_SKEW):
                return _text("replayed", 403)
        except DOWN_ERRORS:
            report_failure()
            return _text("unavailable", 503)
    if not _record_heartbeat(site_id, heartbeat.clean_load(load), "signed"):
        return _text("unavailable", 503)
    return _text("ok")


def _record_heartbeat(site_id: str, load: str, via: str) -> bool:
    try:
        heartbeat.record(get_redis(), province=current_app.config["PROVINCE"], site_id=site_id, load=load, via=via)
        return True
    except DOWN_ERRORS:
        report_failure()
        return False
