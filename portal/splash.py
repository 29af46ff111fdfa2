"""The resident journey: arrival from a gateway, the landing page, and the grant.

1. The gateway sends the phone to ``/hotspot/<vendor>`` with its parameters.
2. We find the site, open a portal session and render the landing page.
3. ``POST /p/<token>/connect`` asks the vendor adapter how to grant access and
   hands the browser that action (a redirect or an auto-submitting form).

Everything fails open: an unknown site, a down Redis or a broken campaign
still ends with a resident who can get online.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import time

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup

import hotspot_hooks
from hotspot_hooks import Arrival, ArrivalError, Grant, HookError, NotAClientError, SignatureError, UnknownVendorError
from hotspot_hooks.guards import GrantRefusedError

from . import events, gateway_steps, page_cache, radius, sessions
from .campaigns import campaign_template
from .errors import render_error
from .i18n import LANGUAGE_NAMES, LANGUAGES, choose_language
from .i18n import gettext as _
from .redis import DOWN_ERRORS, report_failure
from .sessions import PortalSession
# The visit's helpers live in visits.py; these names stay importable from here.
from .visits import (find_site, grant_defaults, load_session_or_expired, open_session,  # noqa: F401
                     page_context, redis_or_none, site_cache, site_of, site_settings)

bp = Blueprint("splash", __name__)
log = logging.getLogger(__name__)


@bp.route("/hotspot/<vendor>", methods=["GET", "POST"])
def arrival(vendor: str):
    """A phone arrives from its gateway: open a session and show the landing page."""
    return arrive(vendor, request.values.to_dict())


def arrive(vendor: str, params: dict):
    """Handle an arrival with *params*; vendor routes with their own paths call this too."""
    g.lang = choose_language(request.values.get("lang"))
    try:
        hook = hotspot_hooks.get_hook(vendor)
    except UnknownVendorError:
        abort(404)
    signed = hook.signed
    if signed:
        params = {**params, **gateway_steps.request_fields()}
    try:
        # Fleet-wide secrets first: openNDS levels 2/3 encrypt the very name that finds the site.
        arrived = hook.parse_arrival(params, settings=site_settings(None) if signed else None)
        site = find_site(vendor, arrived.gateway_id)
        if signed:
            if site is not None:
                first = arrived
                arrived = hook.parse_arrival(params, settings=site_settings(site))
                if arrived.gateway_id != first.gateway_id:
                    # The site was found from fields its own signature does not cover.
                    raise SignatureError("the verified arrival names another gateway")
            # Also for an unregistered gateway: a fleet-key arrival is as replayable as any.
            if not gateway_steps.claim_nonce(vendor, hook, arrived):
                raise SignatureError("replayed arrival (nonce seen before)")
    except SignatureError as error:
        log.warning("refused %s arrival: %s", vendor, error)
        return render_error("errors/forged.html", 403)
    except ArrivalError as error:
        log.warning("malformed %s arrival: %s", vendor, error)
        return render_error("errors/arrival_problem.html", 400)
    if site is None:
        log.warning("arrival from unregistered %s gateway %r", vendor, arrived.gateway_id)
    if arrived.extra.get("outcome"):
        return gateway_steps.render_outcome(arrived, site)
    session = open_session(arrived, site)
    return render_landing(session, site)


# The landing page differs between residents only in the session token, its copy and the line
# that names the site, so it is rendered once per (campaign, language, known site or not) with
# marks in their place (page_cache.py), and each request fills in its own: the number of renders
# does not grow with the number of sites. The render sees a session with nothing but the marks
# and a request with no arguments of anyone's, so no visitor's values can end up in what is shared.
PLACE_MARK = "plc0page0mark0plc"


def render_landing(session: PortalSession, site):
    """Render the campaign with the complaint link and the connect button."""
    if not session.durable:  # Redis is down: rare, render in full
        return _render_landing(session, site, fallback="")
    key = landing_key(session, g.lang, site)
    return page_cache.filled(key, None, lambda: _render_marked_landing(session, site), {
        page_cache.TOKEN_MARK: session.token,
        page_cache.FALLBACK_MARK: sessions.fallback_blob(session),
        PLACE_MARK: cached_place_line(site, g.lang) if site is not None else "",
    })


def landing_key(session: PortalSession, lang: str, site) -> tuple:
    """The page cache's key of *session*'s landing in *lang*: what its shared render depends on."""
    return ("landing", session.campaign, lang, site is not None)


def cached_place_line(site, lang: str) -> str:
    """:func:`place_line`, remembered per (site, language) in the page cache (a new Site object renders anew)."""
    return page_cache.filled(place_key(site, lang), site, lambda: str(place_line(site)), {}, store=page_cache.PLACES)


def place_key(site, lang: str) -> tuple:
    """The key of *site*'s place line in *lang* in the page cache's ``PLACES`` store."""
    return ("place", site.site_id, lang)


def place_line(site) -> Markup:
    """The landing's "You are at ..." line for *site*, in the request's language, its names escaped."""
    return Markup(_("You are at %(place)s, %(desa)s, %(kecamatan)s, %(kabupaten)s.")) % {
        "place": site.name, "desa": site.desa, "kecamatan": site.kecamatan, "kabupaten": site.kabupaten}


def _render_marked_landing(session: PortalSession, site) -> str:
    """The shared render: a placeholder session, in a request that carries nothing of anyone's."""
    marked = PortalSession(token=page_cache.TOKEN_MARK, arrival=Arrival(vendor=session.arrival.vendor, gateway_id=""),
                           site_id=session.site_id, lang=session.lang, campaign=session.campaign)
    with current_app.test_request_context(f"/p/{page_cache.TOKEN_MARK}", method="GET"):
        return _render_landing(marked, site, fallback=page_cache.FALLBACK_MARK, place=Markup(PLACE_MARK))


def _render_landing(session: PortalSession, site, *, fallback: str, place: Markup | None = None) -> str:
    return render_template(
        "splash/landing.html",
        campaign=campaign_template(session.campaign),
        place=place if place is not None else (place_line(site) if site is not None else ""),
        **page_context(session, site, fallback=fallback),
    )


@bp.get("/p/<token>")
def landing(token: str):
    """Show the landing page of an open session again (language switch, back link)."""
    session, error = load_session_or_expired(token)
    if error:
        return error
    return render_landing(session, site_of(session))


@bp.post("/p/<token>/connect")
def connect(token: str):
    """Grant internet access through the session's gateway."""
    session, error = load_session_or_expired(token)
    if error:
        return error
    site = site_of(session)
    hook = hotspot_hooks.get_hook(session.arrival.vendor)
    settings = site_settings(site)
    if session.granted and hotspot_hooks.calls_controller(hook, settings):
        # One controller grant per session: a repeated Connect (or a crafted replay of it)
        # must not make the portal authorise again.
        grant = Grant(kind="done", url=session.arrival.original_url)
        return render_template("splash/online.html", grant=grant, **page_context(session, site))
    try:
        if settings.login_mode == radius.LOGIN_MODE:  # a one-time credential, checked by FreeRADIUS
            settings = radius.login_settings(session, settings)
            # Bound to this device and used once: it may travel in clear (PAP), unlike a shared password.
            settings = dataclasses.replace(settings, options={**settings.options, "allow_pap": "yes"})
        grant = hook.authorize(session.arrival, settings)
        if grant.kind == "gateway":  # the router asks the portal: record the grant for it first
            grant = gateway_steps.hand_over(session, grant, settings.minutes)
    except NotAClientError as error:
        log.warning("grant refused at site %s (%s): %s", session.site_id or "unknown",
                    session.arrival.vendor, without_client(str(error), session.arrival))
        return render_error("errors/not_a_client.html", 403, visit=session)
    except GrantRefusedError as error:
        log.warning("grant refused at site %s (%s): %s", session.site_id or "unknown",
                    session.arrival.vendor, without_client(str(error), session.arrival))
        return render_error("errors/grant_refused.html", 403, visit=session, reason=error.reason)
    except HookError as error:
        log.error("grant failed at site %s (%s): %s", session.site_id or "unknown",
                  session.arrival.vendor, without_client(str(error), session.arrival))
        return render_error("errors/grant_failed.html", 502, visit=session,
                            retry_url=url_for("splash.landing", token=session.token))
    record_grant(session, settings.minutes)
    if grant.kind == "redirect":
        return redirect(grant.url, code=303)
    if grant.kind == "form":
        return render_template("splash/grant_form.html", grant=grant, **page_context(session, site))
    if grant.kind == "gateway":
        return gateway_steps.render_handed_over(session, site, grant)
    return render_template("splash/online.html", grant=grant, **page_context(session, site))


def without_client(text: str, arrival: Arrival) -> str:
    """*text* with the client's MAC and IP masked: controllers echo them in their errors."""
    mac = arrival.client_mac.replace(":", "")
    if len(mac) == 12:
        # Any separator (":", "-", ".", none) and any case, as each vendor writes it.
        pattern = r"[:.\-]?".join(re.escape(mac[i:i + 2]) for i in range(0, 12, 2))
        text = re.sub(pattern, "<client-mac>", text, flags=re.IGNORECASE)
    if arrival.client_ip:
        text = re.sub(rf"(?<![\w.:]){re.escape(arrival.client_ip)}(?![\w.:])", "<client-ip>", text)
    return text


def record_grant(session: PortalSession, minutes: int) -> None:
    """Mark the session granted for *minutes* and count the grant."""
    event = mark_granted(session, minutes)
    if session.durable:
        try:
            sessions.save(session)
        except DOWN_ERRORS:
            report_failure()
    events.record(event)  # counted in the background batch (or spooled by it while Redis is down)


def mark_granted(session: PortalSession, minutes: int, site=None) -> dict:
    """Mark *session* granted now for *minutes* (not stored yet); its grant event."""
    session.granted = time.time()
    session.minutes = minutes
    return events.make_event("grant", site_id=session.site_id, campaign=session.campaign,
                             lang=session.lang, device=session.device, site=site)


@bp.get("/privacy")
def privacy():
    """The privacy notice, versioned, in the resident's language."""
    g.lang = choose_language(request.args.get("lang"))
    back = request.args.get("back", "")
    # Only a live session of our own is a valid way back: never an open redirect.
    back_url = ""
    if back and sessions.load(back) is not None:
        back_url = url_for("splash.landing", token=back)
        g.lang_args = {"back": back}
    return render_template("splash/privacy.html", back_url=back_url, lang=g.lang,
                           languages=[(c, LANGUAGE_NAMES[c]) for c in LANGUAGES])
