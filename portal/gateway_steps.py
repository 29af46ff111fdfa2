"""The gateway-facing steps of the resident journey that need Redis.

The raw request that signed hooks verify, the replay check, gateway outcomes
(CoovaChilli res=...), and the hand-over of ``"gateway"`` grants (openNDS authmon,
WiFiDog) that the router later asks the portal about (portal/gateway_api.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time

from flask import g, redirect, render_template, request, url_for

from hotspot_hooks import Arrival, Grant, HookError
from hotspot_hooks.coovachilli import RAW_QUERY, REQUEST_URL
from hotspot_hooks.guards import GrantRefusedError
from hotspot_hooks.opennds import PATH_FASKEY, PATH_GATEWAY

from . import visits
from .crypto import get_crypto
from .i18n import LANGUAGE_NAMES, LANGUAGES, choose_language
from .redis import DOWN_ERRORS, get_redis, report_failure
from .site_secrets import open_secrets

log = logging.getLogger("portal.gateway_api")

NONCE = "portal:nonce:{}:{}"
REPLAY_TTL = 86400            # a nonce is refused again for a day
AUTHMON_QUEUE = "portal:authmon:{}:{}"   # site id, gatewayhash
AUTHMON_ACK = "portal:authmon:ack:{}"
AUTHMON_TTL = 600             # an entry the router has not fetched by then is dropped
WIFIDOG_TOKEN = "portal:wifidog:tok:{}"
WIFIDOG_GRACE = 300           # seconds to reach the gateway's /wifidog/auth after the grant
WAIT_REFRESH = 2              # seconds between checks on the "wait a moment" page
WAIT_TRIES = 30

def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def request_fields() -> dict:
    """The raw request as signed hooks verify it (CoovaChilli's md covers the exact query).

    On an openNDS FAS path naming a site, also that site's faskey and gateway name, so an
    arrival encrypted under the site's own faskey decrypts before the site is known.
    Always set, so that a client cannot supply them.
    """
    fields = {RAW_QUERY: request.query_string.decode("latin-1"), REQUEST_URL: request.base_url,
              PATH_FASKEY: "", PATH_GATEWAY: ""}
    site_id = (request.view_args or {}).get("site_id", "")
    if request.endpoint in ("gateway_api.opennds_site_path", "gateway_api.opennds_site") and site_id:
        site = visits.site_cache().get(visits.redis_or_none(), site_id)
        faskey = str(open_secrets(get_crypto(), site).get("faskey", "")) if site else ""
        if faskey and site.gateway_vendor == "opennds":
            fields.update({PATH_FASKEY: faskey, PATH_GATEWAY: site.gateway_id})
    return fields


def claim_nonce(vendor: str, hook, arrived: Arrival) -> bool:
    """Return False if the arrival's nonce was seen before (a replay); True otherwise."""
    nonce = hook.replay_key(arrived) if hook.signed else ""
    if not nonce:
        return True
    try:
        return bool(get_redis().set(NONCE.format(vendor, digest(nonce)), "1", nx=True, ex=REPLAY_TTL))
    except DOWN_ERRORS:
        report_failure()
        log.warning("replay check skipped for a %s arrival: Redis is unavailable", vendor)
        return True


def render_outcome(arrived: Arrival, site):
    """Show what the gateway reported (CoovaChilli res=success/already/logoff/failed)."""
    outcome = arrived.extra["outcome"]
    retry_url = ""
    if outcome == "failed":
        # chilli sent a fresh challenge with the failure: a new session can log in again.
        retry_url = url_for("splash.landing", token=visits.open_session(arrived, site).token)
    return render_template("splash/gateway_outcome.html", outcome=outcome, retry_url=retry_url,
                           continue_url=arrived.original_url, **page(site))


def hand_over(session, grant: Grant, minutes: int) -> Grant:
    """Record what the router will ask about for a ``"gateway"`` grant; other grants pass."""
    if grant.kind != "gateway":
        return grant
    protocol = grant.fields.get("protocol")
    try:
        client = get_redis()
        if protocol == "authmon":
            if not session.site_id:
                # Only a registered site's router can poll (with its key): nobody would fetch this.
                raise GrantRefusedError("authmon grant for an unregistered openNDS gateway", reason="not_registered")
            queue = AUTHMON_QUEUE.format(session.site_id, grant.fields["queue"])
            with client.pipeline(transaction=False) as pipe:
                pipe.hset(queue, grant.fields["id"], f"{time.time():.0f} {grant.fields['entry']}")
                pipe.expire(queue, AUTHMON_TTL)
                pipe.execute()
        elif protocol == "wifidog":
            record = {"site": session.site_id, "gw": session.arrival.gateway_id.lower(),
                      "device": session.device, "until": time.time() + minutes * 60 + WIFIDOG_GRACE}
            client.set(WIFIDOG_TOKEN.format(digest(grant.fields["token"])), json.dumps(record),
                       ex=minutes * 60 + WIFIDOG_GRACE)
        else:
            raise HookError(f"unknown gateway grant protocol {protocol!r}")
    except DOWN_ERRORS as error:
        report_failure()
        raise HookError("Redis is unavailable: the gateway could not be told about the grant") from error
    return grant


def render_handed_over(session, site, grant: Grant):
    """Send the browser on after a ``"gateway"`` grant: to the gateway, or to the wait page."""
    if grant.fields.get("protocol") == "wifidog":
        return redirect(grant.url, code=303)
    return render_template("splash/gateway_wait.html", refresh=WAIT_REFRESH,
                           wait_url=url_for("gateway_api.wait", token=session.token, n=1),
                           **visits.page_context(session, site))


def page(site) -> dict:
    """The place and the language switch, for a page shown before any session exists."""
    if "lang" not in g:
        g.lang = choose_language(request.args.get("lang"))
    return {"site": site, "lang": g.lang, "languages": [(c, LANGUAGE_NAMES[c]) for c in LANGUAGES]}
