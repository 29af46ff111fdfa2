"""Connect in the fast lane: the one tap that sends the phone to its router's login, without Flask.

``POST /p/<token>/connect`` at a router that grants in the browser (MikroTik's default trial
login, say) is a session read, the vendor's ``authorize`` (a URL worked out from the arrival
and the site's settings), the session written back as granted, the grant counted, and a 303.
Through Flask that was 1.0–1.5 ms in process, two Redis round trips among it; here the
session comes from the worker's copy when it has one (``FastLane.live_session``) and the write
is the one round trip.

Only a plain redirect grant is taken. A grant through a controller or a router's API (it
calls out, and must happen once per session), a RADIUS one-time login, a grant the router
asks the portal about, a login form to post (its page), a language change, any error of the
adapter, or a Redis that does not take the write: all go to the app, which does it all again
from the start (the adapter's ``authorize`` here is a pure function of the session and site).
"""
from __future__ import annotations

import dataclasses

import hotspot_hooks
from hotspot_hooks import HookError
from werkzeug.urls import iri_to_uri
from werkzeug.utils import redirect

from . import events, radius, sessions, splash, visits
from .fast_arrival import fields

SUFFIX = "/connect"


def connect(lane, environ, token: str):
    """``(endpoint, None, "", body, location)`` of the 303 to the router's login, or None for the app."""
    if not sessions.is_durable_token(token):
        return None
    # The query's, then a URL-encoded body's fields, as the app reads them; the connect button's
    # form sends the page's language and its session copy, what a lane page's links carry too.
    params = fields(environ)
    if params is None or not lane.KNOWN_ARGS.issuperset(params):
        return None
    key, aes_key = sessions.token_keys(lane.secret, token)
    found = lane.live_session(environ, token, key, aes_key, [])  # connect is never refused a limit
    if found is None or lane.session_language(params, found[1]) is None:
        return None
    # The worker's copy is shared: the grant is marked on a copy of it.
    session = dataclasses.replace(found[1], sealed=None)
    with lane.app.app_context():
        site = lane.app.extensions["portal_sites"].get(lane.client, session.site_id) if session.site_id else None
        hook = hotspot_hooks.get_hook(session.arrival.vendor)
        settings = visits.site_settings(site)
        if hotspot_hooks.calls_controller(hook, settings) or settings.login_mode == radius.LOGIN_MODE:
            return None
        try:
            grant = hook.authorize(session.arrival, settings)
        except HookError:
            return None  # the app logs it (the client's address masked) and shows its page
        if grant.kind != "redirect":
            return None
        event = splash.mark_granted(session, settings.minutes, site)
        record_key, blob = sessions.seal(session)
        if lane.ask(environ, [("SET", record_key, blob, "EX", lane.config["SESSION_TTL"])], []) is None:
            return None
        events.record(event, lane.event_buffer(), redis_ok=True)
    body = redirect(grant.url, 303).get_data(as_text=True)  # the app's own redirect page
    return "splash.connect", None, "", body, iri_to_uri(grant.url)
