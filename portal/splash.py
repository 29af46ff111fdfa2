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

import hotspot_hooks
from hotspot_hooks import Arrival, ArrivalError, Grant, HookError, NotAClientError, SignatureError, UnknownVendorError
from hotspot_hooks.guards import GrantRefusedError

from . import events, radius, sessions
from .campaigns import campaign_for, campaign_template
from .crypto import get_crypto
from .errors import render_error
from .i18n import LANGUAGE_NAMES, LANGUAGES, choose_language
from .redis import DOWN_ERRORS, get_redis, report_failure
from .sessions import PortalSession
from .site_secrets import open_secrets
from .sites import grant_settings

bp = Blueprint("splash", __name__)
log = logging.getLogger(__name__)


def site_cache():
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
    from . import gateway_api  # signed vendors: raw request, replay check, gateway outcomes

    signed = hook.signed
    if signed:
        params = {**params, **gateway_api.request_fields()}
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
            if not gateway_api.claim_nonce(vendor, hook, arrived):
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
        return gateway_api.render_outcome(arrived, site)
    session = open_session(arrived, site)
    return render_landing(session, site)


def open_session(arrived: Arrival, site) -> PortalSession:
    """Create the portal session and record the impression in one round trip."""
    session = PortalSession(
        token=sessions.new_token(),
        arrival=arrived,
        site_id=site.site_id if site else "",
        lang=g.lang,
        device=get_crypto().device_id(arrived.client_mac),
        campaign=campaign_for(site, get_crypto().device_id(arrived.client_mac)),  # cap and A/B per device
    )
    event = events.make_event("impression", site_id=session.site_id, campaign=session.campaign,
                              lang=session.lang, device=session.device)
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            sessions.save(session, pipe)
            events.add_to(pipe, event)
            pipe.execute()
    except DOWN_ERRORS:
        report_failure()
        session.token = sessions.fallback_token(session)
        try:
            events.spool_event(event)
        except OSError:
            log.error("could not spool an impression event")
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


# The landing page differs between residents of one site only in the session token and its
# copy, so it is rendered once per (campaign, language, site) with marks in their place, and
# each request fills in its own. The render sees a session with nothing but the marks and a
# request with no arguments of anyone's, so no visitor's values can end up in what is shared.
TOKEN_MARK = "tok0landing0mark0tok"
FALLBACK_MARK = "fb0landing0mark0fb"
LANDING_CACHE_SIZE = 4096


def render_landing(session: PortalSession, site):
    """Render the campaign with the complaint link and the connect button."""
    if not session.durable:  # Redis is down: rare, render in full
        return _render_landing(session, site, fallback="")
    cache = current_app.extensions.setdefault("portal_landing_cache", {})
    key = (session.campaign, g.lang, site.site_id if site else "")
    hit = cache.get(key)
    if hit is None or hit[0] is not site:  # a reloaded registry brings new Site objects
        if len(cache) >= LANDING_CACHE_SIZE:
            cache.clear()
        hit = cache[key] = (site, _render_marked_landing(session, site))
    return hit[1].replace(TOKEN_MARK, session.token).replace(FALLBACK_MARK, sessions.fallback_blob(session))


def _render_marked_landing(session: PortalSession, site) -> str:
    """The shared render: a placeholder session, in a request that carries nothing of anyone's."""
    marked = PortalSession(token=TOKEN_MARK, arrival=Arrival(vendor=session.arrival.vendor, gateway_id=""),
                           site_id=session.site_id, lang=session.lang, campaign=session.campaign)
    with current_app.test_request_context(f"/p/{TOKEN_MARK}", method="GET"):
        return _render_landing(marked, site, fallback=FALLBACK_MARK)


def _render_landing(session: PortalSession, site, *, fallback: str) -> str:
    return render_template(
        "splash/landing.html",
        campaign=campaign_template(session.campaign),
        **page_context(session, site, fallback=fallback),
    )


@bp.get("/p/<token>")
def landing(token: str):
    """Show the landing page of an open session again (language switch, back link)."""
    session, error = load_session_or_expired(token)
    if error:
        return error
    return render_landing(session, site_of(session))


def site_settings(site):
    """Return the grant settings of *site* (deployment defaults for an unknown site)."""
    # The fleet password has its own name: adapters send it only as a CHAP response (guards.py).
    secrets = {"fleet_password": current_app.config["MIKROTIK_PASSWORD"]}
    if current_app.config["OPENNDS_FASKEY"]:
        secrets["faskey"] = current_app.config["OPENNDS_FASKEY"]
    secrets.update(open_secrets(get_crypto(), site))  # {} and an operator log line if undecryptable
    return grant_settings(site, defaults=grant_defaults(), secrets=secrets)


@bp.post("/p/<token>/connect")
def connect(token: str):
    """Grant internet access through the session's gateway."""
    session, error = load_session_or_expired(token)
    if error:
        return error
    from . import gateway_api  # imports this module: bound at call time, not at import

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
            grant = gateway_api.hand_over(session, grant, settings.minutes)
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
        return gateway_api.render_handed_over(session, site, grant)
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
    session.granted = time.time()
    session.minutes = minutes
    event = events.make_event("grant", site_id=session.site_id, campaign=session.campaign,
                              lang=session.lang, device=session.device)
    if session.durable:
        try:
            with get_redis().pipeline(transaction=False) as pipe:
                sessions.save(session, pipe)
                events.add_to(pipe, event)
                pipe.execute()
            return
        except DOWN_ERRORS:
            report_failure()
    try:
        events.spool_event(event)
    except OSError:
        log.error("could not spool a grant event")


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
