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
from dataclasses import dataclass

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
HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

HIT_SHA = hashlib.sha1(HIT.encode()).hexdigest()  # what EVALSHA names it by (redis-py's Script does the same)

# A complaint post's checks, in one script on the post's one round trip (issue 14):
# 1. the site's request counter (a site flooding this minute: "b", nothing else counted);
# 2. the complaint's stored status (a double tap or a resent form: "s<status>", no quota counted);
# 3. for a new complaint that passed the honeypot and fill-time checks, the quota: the device's own
#    counter first; only a complaint within the device's share counts against the site, so one
#    device (however often it sends) cannot use up the site's hour ("q", "qdevice_quota", "qsite_quota").
# KEYS: site request counter, complaint record, device quota counter, site quota counter (one hash tag).
# ARGV: request window, request limit (0: none), quota window, device limit, site limit, count quota (1/0).
_POST_CHECKS = """
if tonumber(ARGV[2]) > 0 then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
  if n > tonumber(ARGV[2]) then return 'b' end
end
local status = redis.call('HGET', KEYS[2], 'status')
if status then return 's' .. status end
if ARGV[6] ~= '1' then return 'q' end
local device = redis.call('INCR', KEYS[3])
if device == 1 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
if device > tonumber(ARGV[4]) then return 'qdevice_quota' end
local site = redis.call('INCR', KEYS[4])
if site == 1 then redis.call('EXPIRE', KEYS[4], ARGV[3]) end
if site > tonumber(ARGV[5]) then return 'qsite_quota' end
return 'q'
"""
_POST_CHECKS_SHA = hashlib.sha1(_POST_CHECKS.encode()).hexdigest()


def pseudonym(*parts: str) -> str:
    """Return a keyed hash (``PORTAL_DEVICE_KEY``) of *parts*: what limit keys hold instead of addresses."""
    return keyed_pseudonym(get_crypto().device_key, *parts)


def keyed_pseudonym(device_key: bytes, *parts: str) -> str:
    """:func:`pseudonym` under an explicit *device_key* (for code outside a request)."""
    message = "\x1f".join(parts).encode()
    return hmac.new(device_key, message, hashlib.sha256).hexdigest()[:16]


def key(scope: str, subject: str) -> str:
    """Redis key of one counter."""
    return KEY.format(prov=current_app.config["PROVINCE"], scope=scope, subject=subject)


#: WSGI environ entries where portal/fast_lane.py leaves the counts it already took for a request
#: it then hands to the app, so that the app neither counts them twice nor lets them through.
COUNTED_CLIENT = "portal.counted_client"
COUNTED_STATUS = "portal.counted_status"
COUNTED_SITE = "portal.counted_site"


_CLIENT_SUBJECTS: dict[tuple[bytes, str], str] = {}
CLIENT_SUBJECT_CACHE = 4096  # addresses; behind the gateways' NAT a site is one address


def client_subject() -> str:
    """The pseudonym of the requesting address (the TCP peer, or nginx's X-Forwarded-For with PROXY_COUNT)."""
    # Remembered per (device key, address): every resident request needs it, and the HMAC costs more
    # than the lookup. Only the process's memory holds the address, as the request itself does.
    return subject_of(get_crypto().device_key, request.remote_addr or "")


def subject_of(device_key: bytes, address: str) -> str:
    """The pseudonym of client *address* under *device_key*, remembered (see :func:`client_subject`)."""
    cache_key = (device_key, address)
    subject = _CLIENT_SUBJECTS.get(cache_key)
    if subject is None:
        if len(_CLIENT_SUBJECTS) >= CLIENT_SUBJECT_CACHE:
            _CLIENT_SUBJECTS.clear()
        subject = _CLIENT_SUBJECTS[cache_key] = keyed_pseudonym(device_key, "client", address)
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


def _queue(scope: str, subject: str, limit: int, window: int, retry_after: int) -> None:
    """Count one hit on the request's own Redis round trip (or after its view); refuse beyond *limit*."""
    if not limit or int(limit) <= 0:
        return
    counter = key(scope, subject)

    def judge(answer) -> None:
        if isinstance(answer, redis.exceptions.NoScriptError):  # Redis restarted: load it and count
            answer = _run(HIT, [counter], window)
        elif isinstance(answer, Exception):
            log.warning("limiter skipped: %s", type(answer).__name__)
            return
        if answer is not None and int(answer) > int(limit):
            raise TooManyRequests(retry_after=retry_after)

    ride_along.queue(ride_along.Hit(sha=HIT_SHA, keys=[counter], args=[window], judge=judge))


def allow(scope: str, subject: str, limit: int, window: int) -> bool:
    """Count one hit of *subject* in *scope*; False once it exceeds *limit* per *window* seconds."""
    if not limit or int(limit) <= 0:
        return True
    count = _run(HIT, [key(scope, subject)], window)
    return count is None or int(count) <= int(limit)


def site_allows(site_id: str) -> bool:
    """Count one request against the site's per-minute limit (``SITE_REQUEST_LIMIT``)."""
    counted = request.environ.get(COUNTED_SITE)
    if counted is not None:  # the fast lane counted it already
        limit = int(current_app.config["SITE_REQUEST_LIMIT"] or 0)
        return limit <= 0 or int(counted) <= limit
    return allow("site", pseudonym("site", site_id or "unknown"), current_app.config["SITE_REQUEST_LIMIT"],
                 REQUEST_WINDOW)


def status_lookup_allowed() -> bool:
    """Count one tracking-number lookup against this client's ``STATUS_LIMIT`` per 10 minutes."""
    return allow("status", client_subject(), current_app.config["STATUS_LIMIT"], STATUS_WINDOW)


def queue_status_lookup() -> None:
    """Count one tracking-number lookup on the status page's own round trip (``STATUS_LIMIT`` per 10 minutes)."""
    if _judge_counted(COUNTED_STATUS, current_app.config["STATUS_LIMIT"], STATUS_WINDOW):
        return
    _queue("status", client_subject(), current_app.config["STATUS_LIMIT"], STATUS_WINDOW, STATUS_WINDOW)


def _judge_counted(entry: str, limit: int, retry_after: int) -> bool:
    """True if the fast lane counted this request already (refusing it if the count is over *limit*)."""
    count = request.environ.get(entry)
    if count is None:
        return False
    if limit and int(limit) > 0 and int(count) > int(limit):
        raise TooManyRequests(retry_after=retry_after)
    return True


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


@dataclass
class PostCheck:
    """What the checks of a complaint post found (:func:`check_complaint_post`)."""

    site_busy: bool = False  # the site's per-minute request limit refused the post
    stored: str = ""         # the status of the complaint if it was stored before, else ""
    quota: str = ""          # "device_quota" or "site_quota" to hold a new complaint for review, else ""


def check_complaint_post(record_key: str, session, *, count_quota: bool) -> PostCheck:
    """Count the post against its site's request limit, read the complaint's stored status and,
    for a new complaint when *count_quota*, count it against its device's and site's hourly quota.

    One round trip, which the client's request counter rides on too. Fails open: with Redis
    down or refusing, nothing is busy, stored or over quota (the save then spools it).
    """
    cfg = current_app.config
    site = pseudonym("site", session.site_id or "unknown")
    keys = [key("site", site), record_key, key("dev", complaint_device(session)), key("sitecomplaints", site)]
    limit = int(cfg["SITE_REQUEST_LIMIT"] or 0)
    args = [REQUEST_WINDOW, max(limit, 0), 3600, int(cfg["DEVICE_LIMIT"]), int(cfg["SITE_LIMIT"]),
            1 if count_quota else 0]
    try:
        client = get_redis()
        try:
            [answer] = ride_along.execute(client, lambda pipe: pipe.evalsha(_POST_CHECKS_SHA, len(keys), *keys, *args))
        except redis.exceptions.NoScriptError:  # Redis restarted: load the script and ask again
            answer = stored_script(client, _POST_CHECKS)(keys=keys, args=args, client=client)
    except DOWN_ERRORS:
        report_failure()
        return PostCheck()
    except redis.RedisError as error:  # e.g. OOM under noeviction: never block a resident
        log.warning("complaint post checks skipped: %s", type(error).__name__)
        return PostCheck()
    answer = answer.decode() if isinstance(answer, bytes) else str(answer)
    if answer == "b":
        return PostCheck(site_busy=True)
    if answer.startswith("s"):
        return PostCheck(stored=answer[1:])
    return PostCheck(quota=answer[1:])


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
        if _judge_counted(COUNTED_CLIENT, app.config["REQUEST_LIMIT"], REQUEST_WINDOW):
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
                hit.judge(_run(HIT, hit.keys, *hit.args))
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
