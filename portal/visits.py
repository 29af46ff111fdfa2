"""A resident's visit: the site it is at, its portal session, and what every page of it shows.

Shared by the resident journey (splash), the complaint form and the gateway-facing routes,
so none of them has to import another's views.
"""
from __future__ import annotations

import logging

from flask import current_app, g, request

from hotspot_hooks import Arrival

from . import events, ride_along, sessions
from .campaigns import campaign_for
from .crypto import get_crypto
from .errors import render_error
from .i18n import LANGUAGE_NAMES, LANGUAGES, choose_language
from .redis import DOWN_ERRORS, get_redis, report_failure
from .sessions import PortalSession
from .site_secrets import open_secrets
from .sites import grant_settings

log = logging.getLogger("portal.splash")


def site_cache():
    """The process's cache of the site registry."""
    return current_app.extensions["portal_sites"]


def redis_or_none():
    """Return the Redis client, or None while the breaker says Redis is down."""
    try:
        return get_redis()
    except DOWN_ERRORS:
        return None


def find_site(vendor: str, gateway_id: str):
    """Return the registered site of a gateway, or None."""
    if not gateway_id:
        return None
    return site_cache().find(redis_or_none(), vendor, gateway_id)


def site_of(session: PortalSession):
    """Return the site of a session, or None for an unknown site."""
    return site_cache().get(redis_or_none(), session.site_id) if session.site_id else None


def grant_defaults() -> dict:
    """Deployment-wide grant settings that a site's own settings override."""
    cfg = current_app.config
    return {
        "minutes": cfg["DEFAULT_MINUTES"],
        "login_mode": cfg["MIKROTIK_LOGIN_MODE"],
        "username": cfg["MIKROTIK_USERNAME"],
    }


#: The campaign the fast lane chose for an arrival it then handed on (portal/fast_arrival.py): the
#: app shows that one, so a capped campaign's showing is counted once.
CHOSEN_CAMPAIGN = "portal.chosen_campaign"


def new_session(arrived: Arrival, site, lang: str, campaign: str | None = None) -> tuple[PortalSession, dict]:
    """A portal session of *arrived* at *site* (not stored yet) and its impression event."""
    device = get_crypto().device_id(arrived.client_mac)
    if campaign is None:
        campaign = campaign_for(site, device)  # cap and A/B per device
    session = PortalSession(token=sessions.new_token(), arrival=arrived, site_id=site.site_id if site else "",
                            lang=lang, device=device, campaign=campaign)
    event = events.make_event("impression", site_id=session.site_id, campaign=session.campaign,
                              lang=session.lang, device=session.device, site=site)
    return session, event


def open_session(arrived: Arrival, site) -> PortalSession:
    """Create the portal session (one Redis write) and count the impression in the background."""
    session, event = new_session(arrived, site, g.lang, request.environ.get(CHOSEN_CAMPAIGN))
    try:
        # One round trip, the limit counters riding on it; Redis fsyncs once a second, so no disk wait.
        ride_along.execute(get_redis(), lambda pipe: sessions.save(session, pipe))
    except DOWN_ERRORS:
        report_failure()
        session.token = sessions.fallback_token(session)
    events.record(event)  # counted in the background batch (or spooled by it while Redis is down)
    return session


def load_session_or_expired(token: str):
    """Return the session of *token*, or an error response telling the resident what to do."""
    session = sessions.load(token, request.values.get("fb", ""))
    if session is None:
        g.lang = choose_language(request.values.get("lang"))
        return None, render_error("errors/session_expired.html", 410)
    g.lang = choose_language(request.values.get("lang") or session.lang)
    if g.lang != session.lang:
        session.lang = g.lang
        sessions.update(session)
    return session, None


def page_context(session: PortalSession, site, *, fallback: str | None = None) -> dict:
    """What every page of a session shows: the place and the language switch."""
    if fallback is None:
        fallback = sessions.fallback_blob(session) if session.durable else ""
    return {
        "fallback": fallback,
        "visit": session,
        "site": site,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "lang": g.lang,
    }


def site_settings(site):
    """Return the grant settings of *site* (deployment defaults for an unknown site)."""
    # The fleet password has its own name: adapters send it only as a CHAP response (guards.py).
    secrets = {"fleet_password": current_app.config["MIKROTIK_PASSWORD"]}
    if current_app.config["OPENNDS_FASKEY"]:
        secrets["faskey"] = current_app.config["OPENNDS_FASKEY"]
    secrets.update(open_secrets(get_crypto(), site))  # {} and an operator log line if undecryptable
    return grant_settings(site, defaults=grant_defaults(), secrets=secrets)
