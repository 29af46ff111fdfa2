"""Request limits that hold without nginx: per client address, per site, and for status lookups.

Counters live in the portal's own Redis, so every gunicorn worker (and every
web server) shares them. Each is a window that opens with its first hit and
expires with it (INCR, and EXPIRE on the first), so no clock boundary lets a
burst through twice. Keys carry the province hash tag and a pseudonym, never
a raw address: ``portal:{p51}:rl:<scope>:<HMAC>``.

A limiter must never keep a resident offline: when Redis is down, slow or
out of memory, the request is allowed (fail open) and the circuit breaker
spares the next requests the wait.

Behind a gateway's NAT a whole site shares one public address, so the
per-client request limit is sized for a busy site, not for one phone; the
tighter limits (complaints per device, status lookups) use their own keys.
"""
from __future__ import annotations

import hashlib
import hmac
import logging

import redis
from flask import Flask, current_app, request
from werkzeug.exceptions import TooManyRequests

from . import ride_along
from .complaints.store import script as stored_script
from .crypto import get_crypto
from .errors import render_error
from .redis import DOWN_ERRORS, get_redis, report_failure

log = logging.getLogger(__name__)
KEY = "portal:{{p{prov}}}:rl:{scope}:{subject}"
REQUEST_WINDOW = 60     # seconds of the per-client and per-site request windows
STATUS_WINDOW = 600     # seconds of the status-lookup window
#: Endpoints machines call (routers, FreeRADIUS, Prometheus, receivers, health checks) are not resident
#: traffic; the grant steps (connect, openNDS wait) need a live session token and must never keep anyone offline.
EXEMPT_BLUEPRINTS = {"radius_api", "delivery_callbacks", "delivery_metrics"}
EXEMPT_ENDPOINTS = {"captive.healthz", "captive.readyz", "gateway_api.authmon", "gateway_api.wifidog_auth",
                    "gateway_api.wifidog_ping", "gateway_api.signed_heartbeat", "splash.connect", "gateway_api.wait"}
#: Resident pages whose view makes a Redis round trip anyway (session, record): their per-client
#: hit rides on it (portal/ride_along.py) instead of costing a round trip of its own (issue 14).
RIDE_ALONG_ENDPOINTS = {"splash.arrival", "splash.landing", "complaints.complaint_form", "complaints.submit",
                        "status.show"}

# Count one hit; the first hit opens the window (the key's lifetime). Returns the count.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

_HIT_SHA = hashlib.sha1(_HIT.encode()).hexdigest()  # what EVALSHA names it by (redis-py's Script does the same)

# Complaint quota: the device's own counter first; only a complaint within the device's share
# counts against the site, so one device (however often it sends) cannot use up the site's hour.
# KEYS: device counter, site counter. ARGV: ttl, device limit, site limit.
_QUOTA = """
local device = redis.call('INCR', KEYS[1])
if device == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if device > tonumber(ARGV[2]) then return 'device_quota' end
local site = redis.call('INCR', KEYS[2])
if site == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
if site > tonumber(ARGV[3]) then return 'site_quota' end
return ''
"""


def pseudonym(*parts: str) -> str:
    """Return a keyed hash (``PORTAL_DEVICE_KEY``) of *parts*: what limit keys hold instead of addresses."""
    message = "\x1f".join(parts).encode()
    return hmac.new(get_crypto().device_key, message, hashlib.sha256).hexdigest()[:16]


def key(scope: str, subject: str) -> str:
    """Redis key of one counter."""
    return KEY.format(prov=current_app.config["PROVINCE"], scope=scope, subject=subject)


_CLIENT_SUBJECTS: dict[tuple[bytes, str], str] = {}
CLIENT_SUBJECT_CACHE = 4096  # addresses; behind the gateways' NAT a site is one address


def client_subject() -> str:
    """The pseudonym of the requesting address (the TCP peer, or nginx's X-Forwarded-For with PROXY_COUNT)."""
    # Remembered per (device key, address): every resident request needs it, and the HMAC costs more
    # than the lookup. Only the process's memory holds the address, as the request itself does.
    cache_key = (get_crypto().device_key, request.remote_addr or "")
    subject = _CLIENT_SUBJECTS.get(cache_key)
    if subject is None:
        if len(_CLIENT_SUBJECTS) >= CLIENT_SUBJECT_CACHE:
            _CLIENT_SUBJECTS.clear()
        subject = _CLIENT_SUBJECTS[cache_key] = pseudonym("client", cache_key[1])
    return subject


def _run(script: str, keys: list[str], *args):
    """Run a limiter script; None when Redis cannot answer (the caller then allows)."""
    try:
        client = get_redis()
        return stored_script(client, script)(keys=keys, args=list(args), client=client)
    except DOWN_ERRORS:
        report_failure()
    except redis.RedisError as error:  # e.g. OOM under noeviction: still never block a resident
        log.warning("limiter skipped: %s", type(error).__name__)
    return None


class SiteBusy(TooManyRequests):
    """The site's per-minute limit refused a complaint post: the form is shown again with what was typed."""


def _queue(scope: str, subject: str, limit: int, window: int, retry_after: int,
           refusal: type[TooManyRequests] = TooManyRequests) -> None:
    """Count one hit on the request's own Redis round trip (or after its view); refuse beyond *limit*."""
    if not limit or int(limit) <= 0:
        return
    counter = key(scope, subject)

    def judge(answer) -> None:
        if isinstance(answer, redis.exceptions.NoScriptError):  # Redis restarted: load it and count
            answer = _run(_HIT, [counter], window)
        elif isinstance(answer, Exception):
            log.warning("limiter skipped: %s", type(answer).__name__)
            return
        if answer is not None and int(answer) > int(limit):
            raise refusal(retry_after=retry_after)

    ride_along.queue(ride_along.Hit(sha=_HIT_SHA, keys=[counter], args=[window], judge=judge))


def allow(scope: str, subject: str, limit: int, window: int) -> bool:
    """Count one hit of *subject* in *scope*; False once it exceeds *limit* per *window* seconds."""
    if not limit or int(limit) <= 0:
        return True
    count = _run(_HIT, [key(scope, subject)], window)
    return count is None or int(count) <= int(limit)


def site_allows(site_id: str) -> bool:
    """Count one request against the site's per-minute limit (``SITE_REQUEST_LIMIT``)."""
    return allow("site", pseudonym("site", site_id or "unknown"), current_app.config["SITE_REQUEST_LIMIT"],
                 REQUEST_WINDOW)


def status_lookup_allowed() -> bool:
    """Count one tracking-number lookup against this client's ``STATUS_LIMIT`` per 10 minutes."""
    return allow("status", client_subject(), current_app.config["STATUS_LIMIT"], STATUS_WINDOW)


def queue_site(site_id: str) -> None:
    """Count one complaint post against the site's per-minute limit on the post's next round trip.

    The refusal is :class:`SiteBusy`, raised by that trip or by :func:`settle`.
    """
    _queue("site", pseudonym("site", site_id or "unknown"), current_app.config["SITE_REQUEST_LIMIT"],
           REQUEST_WINDOW, REQUEST_WINDOW, refusal=SiteBusy)


def settle() -> None:
    """Count now the hits that found no round trip to ride (Redis skipped by the breaker); may refuse."""
    for hit in ride_along.take():
        hit.judge(_run(_HIT, hit.keys, *hit.args))


def queue_status_lookup() -> None:
    """Count one tracking-number lookup on the status page's own round trip (``STATUS_LIMIT`` per 10 minutes)."""
    _queue("status", client_subject(), current_app.config["STATUS_LIMIT"], STATUS_WINDOW, STATUS_WINDOW)


def held_allowed() -> bool:
    """Count one held complaint against this client's ``HELD_LIMIT`` per hour (bounds a bot's storage)."""
    return allow("held", client_subject(), current_app.config["HELD_LIMIT"], 3600)


def complaint_device(session) -> str:
    """Who a complaint is counted against: the device id, else the device's address at its site."""
    if session.device:
        return session.device
    # No MAC (or a vendor that sends none): the address the gateway reported, else the TCP peer,
    # bound to the site so that private addresses of different sites do not collide.
    address = session.arrival.client_ip or request.remote_addr or ""
    return pseudonym("ip", session.site_id or "unknown", address)


def complaint_quota(session) -> str:
    """Count a complaint against its device's and its site's hourly quota.

    Returns "" when within both, else the reason to hold it for review
    ("device_quota" or "site_quota"). Fails open ("").
    """
    cfg = current_app.config
    keys = [key("dev", complaint_device(session)), key("sitecomplaints", pseudonym("site", session.site_id or "unknown"))]
    reason = _run(_QUOTA, keys, 3600, int(cfg["DEVICE_LIMIT"]), int(cfg["SITE_LIMIT"]))
    if isinstance(reason, bytes):
        reason = reason.decode()
    return reason or ""


def too_many_requests(retry_after: int = REQUEST_WINDOW):
    """Raise the translated 429 page."""
    raise TooManyRequests(retry_after=retry_after)


def init_app(app: Flask) -> None:
    """Limit requests per client address, and render the 429 page."""

    @app.before_request
    def limit_client():
        if request.blueprint in EXEMPT_BLUEPRINTS or request.endpoint in EXEMPT_ENDPOINTS:
            return None
        if request.endpoint is None:  # a 404 costs nothing to answer
            return None
        if request.endpoint in RIDE_ALONG_ENDPOINTS:
            _queue("client", client_subject(), app.config["REQUEST_LIMIT"], REQUEST_WINDOW, REQUEST_WINDOW)
            return None
        if not allow("client", client_subject(), app.config["REQUEST_LIMIT"], REQUEST_WINDOW):
            log.info("request limit reached on %s", request.url_rule.rule if request.url_rule else "?")
            too_many_requests()
        return None

    @app.after_request
    def count_left_over_hits(response):
        # A view that never reached Redis (an error page, a malformed number): count its hits now.
        for hit in ride_along.take():
            try:
                hit.judge(_run(_HIT, hit.keys, *hit.args))
            except TooManyRequests as refusal:
                log.info("request limit reached on %s", request.url_rule.rule if request.url_rule else "?")
                body, status, headers = limited(refusal)
                return app.make_response((body, status, headers))
        return response

    @app.errorhandler(429)
    def limited(error):
        body, status = render_error("errors/too_many_requests.html", 429)
        retry = getattr(error, "retry_after", None)
        return body, status, {"Retry-After": str(retry if isinstance(retry, int) else REQUEST_WINDOW)}
