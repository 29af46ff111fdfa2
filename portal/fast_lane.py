"""The fast lane: the busiest repeat pages answered without Flask's per-request machinery.

``GET /p/<token>`` (the landing again: language switch, back link, a phone re-opening its
portal window), ``GET /p/<token>/lapor`` (the blank complaint form) and ``GET /status/<number>``
are pages whose whole work is one Redis read and a shared render filled in. Through Flask, the
framework's request and app contexts, six hooks, the response object and redis-py's pipeline
cost several times that work (issue 14: 0.9 ms in process against 0.2 ms for a bare Flask app).
This WSGI layer answers them itself:

- one Redis round trip on a connection of its own per thread, with the per-client (and
  status-lookup) counter in the same packet, exactly as the app counts them; the form's site
  counter on a second one, since the site is known only once the session is read (as in the app);
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
from urllib.parse import parse_qsl

import redis as redis_py

from . import compress, events, headers, limits, page_cache, sessions, splash, status
from .complaints import service, store
from .complaints import views as complaint_views
from .i18n import LANGUAGES, accepted_language
from .redis import EXTENSION as REDIS_EXTENSION
from .redis import is_cluster
from .results.ops import TALLY, outcome_of, request_id
from .sessions import FALLBACK_PREFIX, PortalSession
from .tracking import display, normalize

log = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
#: Query arguments a lane page understands: ``lang``, and ``fb`` (the session copy, used only while
#: Redis is down, when the app answers). Any other argument goes to the app.
KNOWN_ARGS = frozenset({"lang", "fb"})
POLICY_CACHE_SIZE = 1024
FORM_SUFFIX = "/lapor"
EVENT_BUFFER = "portal_event_buffer"


class FastLane:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``) that answers the lane's pages."""

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
        self.stamps = service.stamp_serializer(config["SECRET_KEY"])
        self.local = threading.local()
        self.policies: dict[tuple, tuple[str, str]] = {}

    def __call__(self, environ, start_response):
        if self.enabled and environ.get("REQUEST_METHOD") == "GET" and not self.breaker.open:
            path = environ.get("PATH_INFO", "")
            page = None
            started = time.perf_counter()
            try:
                if path.startswith("/p/"):
                    page = self.session_page(environ, path[3:])
                elif path.startswith("/status/"):
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
        if not token or "/" in token or len(token) > 64 or not token.isascii() or token.startswith(FALLBACK_PREFIX):
            return None
        args = self.arguments(environ)
        if args is None:
            return None
        key, aes_key = sessions.token_keys(self.secret, token)
        hits = self.client_hits(environ)
        hinted = sessions.SITE_HINTS.get(key) if form else None
        if hinted is not None and self.site_limit > 0:  # the form's site count rides along
            hits.append(self.site_hit(hinted, ("EVALSHA", limits.HIT_IF_SESSION_SHA, 2, key)))
        replies = self.ask(environ, [("GET", key)], hits)
        if replies is None or not isinstance(replies[0], bytes):
            return None  # Redis did not answer here, or no session: the app says what to do
        blob = replies[0]
        text = sessions.open_sealed(aes_key, key, blob)
        if not text:
            return None
        session = PortalSession.from_json(token, text)
        sessions.remember_site(key, session.site_id)
        lang = args.get("lang") or session.lang
        if lang != session.lang or lang not in LANGUAGES:
            return None  # a language change is a session write: the app's
        site = self.app.extensions["portal_sites"].get(self.client, session.site_id) if session.site_id else None
        values = {page_cache.TOKEN_MARK: token, page_cache.FALLBACK_MARK: sessions.page_copy(blob)}
        if form:
            return self.form(environ, session, site, lang, values)
        return self.landing(session, site, lang, values)

    def landing(self, session: PortalSession, site, lang: str, values: dict):
        """The landing of *session* from its shared render and its site's cached place line."""
        extensions = self.app.extensions
        key = splash.landing_key(session, lang, site)
        page = page_cache.cached(extensions, key, None)
        place = "" if site is None else page_cache.cached(extensions, splash.place_key(site, lang), site,
                                                          store=page_cache.PLACES)
        if page is None or place is None:
            return None  # the app renders it once; the next request finds it here
        values[splash.PLACE_MARK] = place
        return "splash.landing", key, page, page_cache.fill(page, values)

    def form(self, environ, session: PortalSession, site, lang: str, values: dict):
        """The blank complaint form of *session*: the site's count, the funnel event, a new stamp."""
        key = complaint_views.form_key(lang)
        page = page_cache.cached(self.app.extensions, key, None)
        if page is None:
            return None
        if self.site_limit > 0 and limits.COUNTED_SITE not in environ:
            # The site is known once the session is read: a second trip, as the app makes.
            if self.ask(environ, [], [self.site_hit(session.site_id, ("EVALSHA", limits.HIT_SHA, 1))]) is None:
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
        lang = args.get("lang")
        if lang not in LANGUAGES:
            lang = accepted_language(environ.get("HTTP_ACCEPT_LANGUAGE", "")) or self.default_language
        hits = self.client_hits(environ)
        if self.status_limit > 0:
            subject = limits.subject_of(self.device_key, environ.get("REMOTE_ADDR") or "")
            hits.append((limits.COUNTED_STATUS,
                         ("EVALSHA", limits.HIT_SHA, 1, self.counter("status", subject), limits.STATUS_WINDOW),
                         self.status_limit))
        replies = self.ask(environ, [("HGETALL", store.record_key(self.province, canonical))], hits)
        if replies is None or not replies[0]:
            return None  # not stored (maybe still spooled): the app's page says so
        raw = replies[0]
        pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2])
        view = status.public_view({k.decode(): v.decode() for k, v in pairs})
        key_ = status.page_key(lang, view)
        page = page_cache.cached(self.app.extensions, key_, None)
        if page is None:
            return None
        return "status.show", key_, page, page_cache.fill(page, status.fill_values(display(canonical), view))

    # --- what every lane page shares --------------------------------------------------------------

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

    def site_hit(self, site_id: str, script: tuple) -> tuple:
        """The form's count against *site_id* (``SITE_REQUEST_LIMIT``), by *script* and its leading keys."""
        subject = limits.keyed_pseudonym(self.device_key, "site", site_id or "unknown")
        counter = self.counter("site", subject)
        return (limits.COUNTED_SITE, (*script, counter, limits.REQUEST_WINDOW), self.site_limit)

    def counter(self, scope: str, subject: str) -> str:
        return limits.KEY.format(prov=self.province, scope=scope, subject=subject)

    def client_hits(self, environ) -> list:
        """The per-client request counter of this request, as the app's ``limit_client`` counts it."""
        if self.request_limit <= 0:
            return []
        subject = limits.subject_of(self.device_key, environ.get("REMOTE_ADDR") or "")
        return [(limits.COUNTED_CLIENT, ("EVALSHA", limits.HIT_SHA, 1, self.counter("client", subject),
                                         limits.REQUEST_WINDOW), self.request_limit)]

    def ask(self, environ, commands: list[tuple], hits: list[tuple]) -> list | None:
        """Send *commands* and each hit's counter script in one packet; the commands' replies.

        A hit is ``(environ entry, EVALSHA command, limit)``. Each counter's new count is left in
        the environ for the app. None when Redis did not answer, or a counter is over its limit
        (the app then refuses the request).
        """
        packet = list(commands) + [command for _, command, _ in hits]
        replies = self.round_trip(packet)
        if replies is None:
            return None
        missing = [n for n, reply in enumerate(replies) if isinstance(reply, redis_py.exceptions.NoScriptError)]
        if missing:
            # After a restart or failover the scripts are gone: load them and send again only the
            # counts that did not run, so none is taken twice.
            loaded = self.round_trip([("SCRIPT", "LOAD", limits.HIT), ("SCRIPT", "LOAD", limits.HIT_IF_SESSION)])
            again = self.round_trip([packet[n] for n in missing]) if loaded is not None else None
            if again is None:
                return None
            for n, reply in zip(missing, again):
                replies[n] = reply
        over = False
        for (entry, _, limit), count in zip(hits, replies[len(commands):]):
            if isinstance(count, int):  # a NOSCRIPT (Redis restarted) leaves the count to the app
                environ[entry] = count
                over = over or count > limit
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
        """Close this thread's connection; the next request opens a new one."""
        connection.disconnect()
        self.local.connection = None

    def connection(self):
        """This thread's own connection, made like the app client's (Sentinel-aware), outside its pool."""
        connection = getattr(self.local, "connection", None)
        if connection is None:
            pool = self.client.connection_pool
            connection = self.local.connection = pool.connection_class(**pool.connection_kwargs)
        return connection

    def policy(self, key: tuple, page: str) -> str:
        """The CSP of a cached render (its inline stylesheets), worked out once per render."""
        known = self.policies.get(key)
        if known is None or known[0] is not page:
            if len(self.policies) >= POLICY_CACHE_SIZE:
                self.policies.clear()
            known = self.policies[key] = (page, headers.page_policy(page.encode()))
        return known[1]

    def respond(self, environ, start_response, started: float, endpoint: str, key: tuple, page: str, body: str):
        """Send *body* as the app would: its headers, gzip if accepted, the request counted in the metrics."""
        data = body.encode()
        gzipped = len(data) >= compress.MIN_BYTES and compress.gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", ""))
        if gzipped:
            data = gzip.compress(data, compress.LEVEL, mtime=0)
        response_headers = [("Content-Type", HTML), ("Content-Length", str(len(data))), ("Vary", "Accept-Encoding")]
        if gzipped:
            response_headers.append(("Content-Encoding", "gzip"))
        response_headers.append(("X-Request-Id", request_id(environ)))
        response_headers.extend(headers.FIXED)
        response_headers.append(("Content-Security-Policy", self.policy(key, page)))
        start_response("200 OK", response_headers)
        TALLY.add(endpoint, "GET", "200", time.perf_counter() - started, outcome_of(endpoint, 200))
        return [data]


def init_app(app) -> None:
    """Put the lane in front of the app's WSGI callable (inside any ProxyFix, which must see requests first)."""
    app.wsgi_app = FastLane(app, app.wsgi_app)
