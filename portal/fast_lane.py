"""The fast lane: the busiest resident pages answered without Flask's per-request machinery.

Two of them write: the arrival (``/hotspot/<vendor>``, portal/fast_arrival.py) and connect
(``POST /p/<token>/connect``, portal/fast_connect.py) each store one session on the lane's round
trip. The rest read:

``GET /p/<token>`` (the landing again: language switch, back link, a phone re-opening its
portal window), ``GET /p/<token>/lapor`` (the blank complaint form) and ``GET /status/<number>``
are pages whose whole work is one Redis read and a shared render filled in. Through Flask, the
framework's request and app contexts, six hooks, the response object and redis-py's pipeline
cost several times that work (issue 14: 0.9 ms in process against 0.2 ms for a bare Flask app).
This WSGI layer answers them itself:

- the session or complaint record from the worker's own copy (``portal/tracked_cache.py``), which
  Redis empties of a key the moment it changes; on a miss, one Redis round trip on a connection
  of the lane's own per thread;
- the per-client, status-lookup and site limits counted as the app counts them, in leases of
  several hits (``portal/counter_leases.py``) that ride on that round trip, or on one of their
  own when a lease is spent; so most of these pages need no Redis round trip at all;
- the render the app made and cached (``portal/page_cache.py``), filled in with this
  request's own values: its token and session copy, its site's line, a new form stamp, its number;
- the form's funnel event, into the app's own event buffer;
- the same headers (security headers, the page's CSP, ``Vary``, ``X-Request-Id``), gzip for a
  client that accepts it, and the same request metrics.

Whenever something is not at hand — no cached render yet, an expired session, a language
change (a session write), Redis slow or down (its breaker), a counter over its limit, a query
argument it does not know, a HEAD, a cluster client — the request goes on to the Flask app
unchanged. The counts taken here travel with it in the environ (``limits.COUNTED_*``), so the
app counts nothing twice and refuses what is over a limit with its own translated page.
``PORTAL_FAST_LANE=false`` turns the lane off; ``tests/test_fast_lane.py`` checks that both
ways give the same page, byte for byte and header for header.
"""
from __future__ import annotations

import gzip
import logging
import threading
import time
from typing import NamedTuple
from urllib.parse import parse_qsl

import redis as redis_py

from . import compress, events, fast_arrival, fast_connect, headers, limits, page_cache, sessions, splash, status
from .complaints import service, store
from .complaints import views as complaint_views
from .counter_leases import SCRIPTS as LEASE_SCRIPTS
from .counter_leases import CounterLeases
from .i18n import LANGUAGES, accepted_language
from .redis import EXTENSION as REDIS_EXTENSION
from .redis import is_cluster
from .results.ops import TALLY, outcome_of, request_id
from .sessions import PortalSession
from .tracked_cache import MISSING, TrackedCache
from .tracking import display, normalize

log = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
#: Query arguments a lane page understands: ``lang``, and ``fb`` (the session copy, used only while
#: Redis is down, when the app answers). Any other argument goes to the app.
KNOWN_ARGS = frozenset({"lang", "fb"})
POLICY_CACHE_SIZE = 1024
SITE_SUBJECTS = 200_000  # site pseudonyms remembered (the registry's size, with room)
FORM_SUFFIX = "/lapor"
EVENT_BUFFER = "portal_event_buffer"


class Hit(NamedTuple):
    """One request counted against a limit: where its count goes in the environ, the counter, the limit."""

    entry: str
    key: str
    limit: int
    window: int
    guard: str | None = None  # counted only if this key (the session) exists


class FastLane:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``) that answers the lane's pages."""

    KNOWN_ARGS = KNOWN_ARGS

    def __init__(self, app, inner):
        self.app, self.inner = app, inner
        config = app.config
        self.secret = config["SECRET_KEY"].encode()
        self.device_key = config["DEVICE_KEY"].encode()
        self.province = config["PROVINCE"]
        self.default_language = config["DEFAULT_LANGUAGE"]
        self.config = config  # limits are read per request: an operator (or a test) may change them
        self.client, self.breaker = app.extensions[REDIS_EXTENSION]
        # A cluster client routes each key to its node; the lane's one connection cannot.
        self.enabled = bool(config.get("FAST_LANE", True)) and not is_cluster(self.client)
        self.stamps = service.stamp_signer(config["SECRET_KEY"])
        self.local = threading.local()
        self.policies: dict[tuple, tuple[str, str]] = {}
        self.leases = CounterLeases()
        self.site_subjects: dict[str, str] = {}
        # Sessions and complaint records, as the pages read them; the listener speaks RESP3.
        self.cache = TrackedCache(lambda: self.new_connection(protocol=3),
                                  [sessions.KEY.format(""), store.record_key(self.province, "")])

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if self.enabled and method in ("GET", "POST") and not self.breaker.open:
            path = environ.get("PATH_INFO", "")
            page = None
            started = time.perf_counter()
            try:
                if path.startswith(fast_arrival.PREFIX):
                    page = fast_arrival.arrival(self, environ, path[len(fast_arrival.PREFIX):])
                elif method == "POST" and path.startswith("/p/") and path.endswith(fast_connect.SUFFIX):
                    page = fast_connect.connect(self, environ, path[3:-len(fast_connect.SUFFIX)])
                elif method == "GET" and path.startswith("/p/"):
                    page = self.session_page(environ, path[3:])
                elif method == "GET" and path.startswith("/status/"):
                    page = self.status(environ, path[8:])
            except Exception:  # noqa: BLE001 - never a 500 from the lane: the app answers instead
                log.exception("fast lane failed; the app answers")
                page = None
            if page is not None:
                return self.respond(environ, start_response, started, *page)
        return self.inner(environ, start_response)

    # --- the pages -------------------------------------------------------------------------------

    def session_page(self, environ, rest: str):
        """The landing or the blank complaint form of a live session, or None for the app to answer."""
        form = rest.endswith(FORM_SUFFIX)
        token = rest[:-len(FORM_SUFFIX)] if form else rest
        if not sessions.is_durable_token(token):
            return None
        args = self.arguments(environ)
        if args is None:
            return None
        key, aes_key = sessions.token_keys(self.secret, token)
        hits = self.client_hits(environ)
        hinted = sessions.SITE_HINTS.get(key) if form else None
        if hinted is not None and self.site_limit > 0:  # the form's site count rides along
            hits.append(self.site_hit(hinted, guard=key))
        found = self.live_session(environ, token, key, aes_key, hits)
        if found is None:
            return None
        blob, session = found
        lang = self.session_language(args, session)
        if lang is None:
            return None
        site = self.app.extensions["portal_sites"].get(self.client, session.site_id) if session.site_id else None
        values = {page_cache.TOKEN_MARK: token, page_cache.FALLBACK_MARK: sessions.page_copy(blob)}
        if form:
            return self.form(environ, session, site, lang, values)
        return self.landing(session, site, lang, values)

    def live_session(self, environ, token: str, key: str, aes_key: bytes, hits: list[Hit]):
        """``(sealed record, session)`` of *token* (Redis key *key*), with *hits* counted; None for the app.

        From the worker's copy if it has one, else one round trip (which keeps a copy). The
        session returned is that shared copy: a caller that changes it must change a copy of it.
        """
        found = self.cache.get(key)
        if found is not MISSING:
            return found if self.ask(environ, [], hits) is not None else None
        mark = self.cache.mark()
        replies = self.ask(environ, [("GET", key), ("PTTL", key)], hits)
        if replies is None or not isinstance(replies[0], bytes):
            return None  # Redis did not answer here, or no session: the app says what to do
        blob = replies[0]
        text = sessions.open_sealed(aes_key, key, blob)
        if not text:
            return None
        session = PortalSession.from_json(token, text)
        sessions.remember_site(key, session.site_id)
        # Kept whole: the key is a keyed hash of the token, so only this token finds it again.
        self.cache.put(key, (blob, session), mark, replies[1])
        return blob, session

    def landing(self, session: PortalSession, site, lang: str, values: dict):
        """The landing of *session* from its shared render and its site's cached place line."""
        found = self.landing_render(session, site, lang)
        if found is None:
            return None  # the app renders it once; the next request finds it here
        key, page, place = found
        values[splash.PLACE_MARK] = place
        return "splash.landing", key, page, page_cache.fill(page, values)

    def landing_render(self, session: PortalSession, site, lang: str) -> tuple[tuple, str, str] | None:
        """The cache key and shared render of *session*'s landing and its site's place line, if cached."""
        extensions = self.app.extensions
        key = splash.landing_key(session, lang, site)
        page = page_cache.cached(extensions, key, None)
        place = "" if site is None else page_cache.cached(extensions, splash.place_key(site, lang), site,
                                                          store=page_cache.PLACES)
        return None if page is None or place is None else (key, page, place)

    def form(self, environ, session: PortalSession, site, lang: str, values: dict):
        """The blank complaint form of *session*: the site's count, the funnel event, a new stamp."""
        key = complaint_views.form_key(lang)
        page = page_cache.cached(self.app.extensions, key, None)
        if page is None:
            return None
        if self.site_limit > 0 and limits.COUNTED_SITE not in environ:
            # The site is known once the session is read: from a lease, or a trip of its own.
            if self.ask(environ, [], [self.site_hit(session.site_id)]) is None:
                return None
        events.record(service.form_opened(session, site=site, province=self.province), self.event_buffer(),
                      redis_ok=True)  # the lane runs only while the breaker is closed
        values[page_cache.STAMP_MARK] = service.new_form_stamp(self.stamps)
        values.update(complaint_views.place_values(site))
        return "complaints.complaint_form", key, page, page_cache.fill(page, values)

    def event_buffer(self):
        """The app's funnel-event buffer (made in an app context the first time)."""
        found = self.app.extensions.get(EVENT_BUFFER)
        if found is None:
            with self.app.app_context():
                found = events.buffer()
        return found

    def status(self, environ, number: str):
        """The status page of a stored complaint, or None for the app to answer."""
        if "/" in number:
            return None
        args = self.arguments(environ)
        canonical = normalize(number) if args is not None else None
        if canonical is None:
            return None  # the app's page for a mistyped number
        lang = self.language(environ, args.get("lang"))
        hits = self.client_hits(environ)
        if self.status_limit > 0:
            subject = limits.subject_of(self.device_key, environ.get("REMOTE_ADDR") or "")
            hits.append(Hit(limits.COUNTED_STATUS, self.counter("status", subject), self.status_limit,
                            limits.STATUS_WINDOW))
        record = store.record_key(self.province, canonical)
        view = self.cache.get(record)
        if view is MISSING:
            mark = self.cache.mark()
            replies = self.ask(environ, [("HGETALL", record), ("PTTL", record)], hits)
            if replies is None or not replies[0]:
                return None  # not stored (maybe still spooled): the app's page says so
            raw = replies[0]
            pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2])
            view = status.public_view({k.decode(): v.decode() for k, v in pairs})
            self.cache.put(record, view, mark, replies[1])
        elif self.ask(environ, [], hits) is None:
            return None
        key_ = status.page_key(lang, view)
        page = page_cache.cached(self.app.extensions, key_, None)
        if page is None:
            return None
        return "status.show", key_, page, page_cache.fill(page, status.fill_values(display(canonical), view))

    # --- what every lane page shares --------------------------------------------------------------

    def language(self, environ, explicit: str | None) -> str:
        """The page's language as ``i18n.choose_language`` picks it: *explicit*, Accept-Language, the default."""
        if explicit in LANGUAGES:
            return explicit
        return accepted_language(environ.get("HTTP_ACCEPT_LANGUAGE", "")) or self.default_language

    @staticmethod
    def session_language(args: dict, session: PortalSession) -> str | None:
        """The language of a session's page, or None for a change of it (a session write: the app's)."""
        lang = args.get("lang") or session.lang
        return lang if lang == session.lang and lang in LANGUAGES else None

    @staticmethod
    def arguments(environ) -> dict | None:
        """The query's arguments (first value of each), or None if one is not the lane's."""
        query = environ.get("QUERY_STRING", "")
        if not query:
            return {}
        args: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name not in KNOWN_ARGS:
                return None
            args.setdefault(name, value)
        return args

    @property
    def request_limit(self) -> int:
        return int(self.config["REQUEST_LIMIT"] or 0)

    @property
    def status_limit(self) -> int:
        return int(self.config["STATUS_LIMIT"] or 0)

    @property
    def site_limit(self) -> int:
        return int(self.config["SITE_REQUEST_LIMIT"] or 0)

    def site_hit(self, site_id: str, guard: str | None = None) -> Hit:
        """The form's count against *site_id* (``SITE_REQUEST_LIMIT``); only if *guard* exists, if given."""
        subject = self.site_subjects.get(site_id)
        if subject is None:  # a keyed hash per request otherwise; a site id is not personal data
            if len(self.site_subjects) >= SITE_SUBJECTS:
                self.site_subjects.clear()
            subject = self.site_subjects[site_id] = limits.keyed_pseudonym(self.device_key, "site", site_id or "unknown")
        return Hit(limits.COUNTED_SITE, self.counter("site", subject), self.site_limit, limits.REQUEST_WINDOW, guard)

    def counter(self, scope: str, subject: str) -> str:
        return limits.KEY.format(prov=self.province, scope=scope, subject=subject)

    def client_hits(self, environ) -> list[Hit]:
        """The per-client request counter of this request, as the app's ``limit_client`` counts it."""
        if self.request_limit <= 0:
            return []
        subject = limits.subject_of(self.device_key, environ.get("REMOTE_ADDR") or "")
        return [Hit(limits.COUNTED_CLIENT, self.counter("client", subject), self.request_limit, limits.REQUEST_WINDOW)]

    def ask(self, environ, commands: list[tuple], hits: list[Hit]) -> list | None:
        """Count *hits* and send *commands*, in one packet if any is needed; the commands' replies.

        A hit is counted from this worker's lease of its counter if one is live, else by a new
        lease on the packet. Each count is left in the environ for the app. None when Redis did
        not answer, or a count is over its limit (the app then refuses the request).
        """
        pending = []
        for hit in hits:
            count = self.leases.spend(hit.key)
            if count is None:
                pending.append(hit)
            else:
                environ[hit.entry] = count
        replies: list = []
        if commands or pending:
            packet = list(commands) + [self.leases.command(h.key, h.limit, h.window, h.guard) for h in pending]
            replies = self.round_trip(packet)
            if replies is None:
                return None
            missing = [n for n, reply in enumerate(replies) if isinstance(reply, redis_py.exceptions.NoScriptError)]
            if missing:
                # After a restart or failover the scripts are gone: load them and send again only the
                # counts that did not run, so none is taken twice.
                loaded = self.round_trip([("SCRIPT", "LOAD", script) for script in LEASE_SCRIPTS])
                again = self.round_trip([packet[n] for n in missing]) if loaded is not None else None
                if again is None:
                    return None
                for n, reply in zip(missing, again):
                    replies[n] = reply
            for hit, reply in zip(pending, replies[len(commands):]):
                count = None if isinstance(reply, Exception) else self.leases.granted(hit.key, hit.limit, reply)
                if count is not None:  # none: no session to count against (or an error, left to the app)
                    environ[hit.entry] = count
        over = any(int(environ.get(hit.entry, 0)) > hit.limit for hit in hits)
        if over or any(isinstance(reply, Exception) for reply in replies):
            return None
        return replies[:len(commands)]

    def round_trip(self, packet: list[tuple]) -> list | None:
        """Every reply of *packet* (an error reply as its exception), or None if Redis did not answer.

        One retry on a fresh connection after a broken one (a Redis restart leaves every kept
        connection stale); a timeout is not retried. The app's own client and breaker decide
        what a Redis that is really down means for the request.
        """
        for attempt in (1, 2):
            connection = self.connection()
            try:
                connection.send_packed_command(connection.pack_commands(packet))
                replies = []
                for _ in packet:
                    try:
                        replies.append(connection.read_response())
                    except redis_py.ResponseError as error:
                        replies.append(error)
                if any(isinstance(reply, Exception) for reply in replies):
                    # A READONLY from a demoted primary, say: the next request connects afresh
                    # (through Sentinel, when the app's client does).
                    self.drop(connection)
                return replies
            except (redis_py.ConnectionError, redis_py.TimeoutError, OSError) as error:
                self.drop(connection)
                if attempt == 2 or isinstance(error, redis_py.TimeoutError):
                    return None
            except BaseException:
                self.drop(connection)  # never leave a reply unread for the thread's next request
                raise
        return None

    def drop(self, connection) -> None:
        """Close this thread's connection; the next request opens a new one.

        The worker's copies go too: whatever failed (a restart, a failover) may have cut the
        invalidations off, and a new primary has not been asked to send them.
        """
        connection.disconnect()
        self.local.connection = None
        self.cache.reset()

    def connection(self):
        """This thread's own connection (see :meth:`new_connection`)."""
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = self.new_connection()
        return connection

    def new_connection(self, **overrides):
        """A connection made like the app client's (Sentinel-aware), outside its pool."""
        pool = self.client.connection_pool
        return pool.connection_class(**dict(pool.connection_kwargs, **overrides))

    def policy(self, key: tuple, page: str) -> str:
        """The CSP of a cached render (its inline stylesheets), worked out once per render."""
        known = self.policies.get(key)
        if known is None or known[0] is not page:
            if len(self.policies) >= POLICY_CACHE_SIZE:
                self.policies.clear()
            known = self.policies[key] = (page, headers.page_policy(page.encode()))
        return known[1]

    def respond(self, environ, start_response, started: float, endpoint: str, key: tuple | None, page: str,
                body: str, location: str | None = None):
        """Send *body* as the app would: its headers, gzip if accepted, the request counted in the metrics.

        *key* names a cached render *page* whose stylesheet policy is kept; a page of its own (a
        redirect's, to *location*, with a 303) has its policy worked out from *body*.
        """
        data = body.encode()
        policy = self.policy(key, page) if key is not None else headers.page_policy(data)
        gzipped = len(data) >= compress.MIN_BYTES and compress.gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", ""))
        if gzipped:
            data = gzip.compress(data, compress.LEVEL, mtime=0)
        response_headers = [("Content-Type", HTML), ("Content-Length", str(len(data)))]
        if location is not None:
            response_headers.append(("Location", location))
        response_headers.append(("Vary", "Accept-Encoding"))
        if gzipped:
            response_headers.append(("Content-Encoding", "gzip"))
        response_headers.append(("X-Request-Id", request_id(environ)))
        response_headers.extend(headers.FIXED)
        response_headers.append(("Content-Security-Policy", policy))
        status, line = (200, "200 OK") if location is None else (303, "303 SEE OTHER")
        start_response(line, response_headers)
        TALLY.add(endpoint, environ["REQUEST_METHOD"], str(status), time.perf_counter() - started,
                  outcome_of(endpoint, status))
        return [data]


def init_app(app) -> None:
    """Put the lane in front of the app's WSGI callable (inside any ProxyFix, which must see requests first)."""
    app.wsgi_app = FastLane(app, app.wsgi_app)
