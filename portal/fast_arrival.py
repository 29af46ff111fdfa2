"""The arrival in the fast lane: a phone sent by its router gets its session and landing without Flask.

An arrival (``GET`` or ``POST /hotspot/<vendor>``) is the portal's busiest write: parse what the
router sent, find the site, choose the campaign, store a new session, count the impression and
show the landing. Through Flask, the framework's request machinery and its form parser cost
more than that work (issue 14: 0.97 ms in process, of which the work is about a quarter). The
lane does the same steps with the app's own functions — the vendor's hook, the site registry,
``visits.new_session``, ``sessions.seal``, the landing's shared render — in an app context but
no request context, and stores the session on the lane's one round trip, the per-client
counter riding on it.

It takes only what needs nothing more: an unsigned vendor (a signed one needs the raw request
and a nonce claim), a registered site, no gateway outcome, a URL-encoded or empty body of a
known length. Everything else, and any step that does not go as planned, goes on to the app
unchanged: the body is put back for it to read, the counts taken travel in the environ, and so
does the campaign already chosen (``visits.CHOSEN_CAMPAIGN``), so that a capped campaign's
showing is counted once.
"""
from __future__ import annotations

import io
from urllib.parse import parse_qsl

import hotspot_hooks
from hotspot_hooks import ArrivalError, UnknownVendorError

from . import events, page_cache, sessions, splash, visits

PREFIX = "/hotspot/"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 16 * 1024  # a router's arrival is well under 1 KB; a larger body is the app's to judge
#: How werkzeug decodes a query or form, so a field reads the same here as in the app (werkzeug registers it).
ERRORS = "werkzeug.url_quote"


def arrival(lane, environ, vendor: str):
    """``(endpoint, key, render, page)`` of the landing of a new session for this arrival, or None for the app."""
    if not vendor or "/" in vendor:
        return None
    try:
        hook = hotspot_hooks.get_hook(vendor)
    except UnknownVendorError:
        return None
    if hook.signed:
        return None
    params = fields(environ)
    if params is None:
        return None
    try:
        arrived = hook.parse_arrival(params, settings=None)
    except ArrivalError:
        return None  # the app logs it and shows its page
    if arrived.extra.get("outcome") or not arrived.gateway_id:
        return None
    site = lane.app.extensions["portal_sites"].find(lane.client, vendor, arrived.gateway_id)
    if site is None:
        return None  # an unregistered gateway: the app logs it
    lang = lane.language(environ, params.get("lang"))
    with lane.app.app_context():
        session, event = visits.new_session(arrived, site, lang)
        environ[visits.CHOSEN_CAMPAIGN] = session.campaign
        found = lane.landing_render(session, site, lang)
        if found is None:
            return None  # no shared render yet: the app makes it, with this campaign
        key, blob = sessions.seal(session)
        # The session and any new lease in one packet. Over the client's limit, the app refuses the
        # request with its own page; the session written with it then expires unused.
        stored = lane.ask(environ, [("SET", key, blob, "EX", lane.config["SESSION_TTL"])], lane.client_hits(environ))
        if stored is None:
            return None  # Redis did not take it: the app's fail-open path (a session in the token)
        events.record(event, lane.event_buffer(), redis_ok=True)
    render_key, render, place = found
    values = {page_cache.TOKEN_MARK: session.token, page_cache.FALLBACK_MARK: sessions.page_copy(blob),
              splash.PLACE_MARK: place}
    return "splash.arrival", render_key, render, page_cache.fill(render, values)


def fields(environ) -> dict[str, str] | None:
    """The arrival's fields as the app reads them (the query's first, then the body's), or None.

    A ``POST`` body is read here and put back in the environ, so the app can read it again if it answers.
    """
    params: dict[str, str] = {}
    try:
        query = environ.get("QUERY_STRING", "").encode("latin-1").decode()
    except UnicodeError:
        return None
    for name, value in parse_qsl(query, keep_blank_values=True, errors=ERRORS):
        params.setdefault(name, value)
    if environ["REQUEST_METHOD"] != "POST":
        return params
    content_type = environ.get("CONTENT_TYPE", "")
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isdigit() or int(length) > MAX_BODY:
        return None  # chunked, or large: the app's limits apply
    if int(length) == 0:
        return params
    if content_type.split(";", 1)[0].strip().lower() != FORM_TYPE:
        return None
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        text = body.decode()
    except UnicodeError:
        return None
    for name, value in parse_qsl(text, keep_blank_values=True, errors=ERRORS):
        params.setdefault(name, value)
    return params
