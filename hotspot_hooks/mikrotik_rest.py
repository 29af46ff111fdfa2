"""MikroTik RouterOS v7 REST: log the client in from the server side (login_mode ``rest``).

Only for sites whose router the portal can reach (VPN or tunnel, gateways.md
§1.2(d)). RouterOS logs a host in only as some hotspot user, and the limits of
a session come from that user, so each grant makes a **one-time user** with a
random name (never the MAC) and removes it again once it is not in use:

1. ``GET    /rest/ip/hotspot/host?mac-address=<mac>``  the client check: the router
   must list the device, at the session's IP, as a hotspot host (already logged
   in: nothing to do);
2. ``PUT    /rest/ip/hotspot/user``                     ``portal-<time>-<random>``, bound
   to the MAC, with ``limit-uptime`` and the quota;
3. ``POST   /rest/ip/hotspot/active/login``             log the host in as that user;
4. ``GET    /rest/ip/hotspot/active`` and ``/ip/hotspot/user?comment=…``, then
   ``DELETE /rest/ip/hotspot/user/<.id>`` for every portal user (this comment) with
   no active session, older than a minute (a concurrent grant's fresh user stays).

So the router holds portal users only for sessions in progress (and until the
next grant after one ends); whether RouterOS ends a session whose user is
removed does not matter, because in-use users are never removed.

Rate limits come from the user profile (option ``rest_profile``), since
RouterOS has no per-user rate field. HTTP Basic auth with a router user of
group ``write`` (secrets ``rest_username``/``rest_password``); options
``rest_url`` (``https://10.8.0.12``), ``verify_tls``, ``controller_timeout``.
"""
from __future__ import annotations

import secrets as token_source
import time
from urllib.parse import quote

import requests

from .base import (Arrival, ArrivalError, ControllerAuthError, ControllerRejectedError, Grant, HookError,
                   NotAClientError, SiteSettings)
from .controller_http import base_url, host_of, option_bool, read_timeout, send, server_error, valid_ip

WHAT = "MikroTik REST API"
#: Marks the users the portal creates, so that it removes only its own.
COMMENT = "captive portal"
#: A portal user younger than this may belong to a grant still logging in: left alone.
SWEEP_AGE = 60


def one_time_user(now: float | None = None) -> str:
    """A fresh hotspot user name: creation time and randomness, nothing about the device."""
    return f"portal-{int(time.time() if now is None else now)}-{token_source.token_hex(4)}"


def created_at(name: str) -> float:
    """When the portal created the user *name*; 0 for older or foreign names."""
    parts = name.split("-")
    if len(parts) == 3 and parts[0] == "portal" and parts[1].isdigit():
        return float(parts[1])
    return 0.0


class RestRouter:
    """Calls to one router's ``/rest`` with Basic auth; every answer checked."""

    def __init__(self, settings: SiteSettings):
        options = settings.options
        self.base = base_url(options.get("rest_url"), option="rest_url") + "/rest"
        self.host = host_of(self.base)
        user = settings.secrets.get("rest_username") or options.get("rest_username", "")
        password = settings.secrets.get("rest_password", "")
        if not user or not password:
            raise ControllerAuthError("the site has no rest_username/rest_password secret: set them "
                                      "with `flask --app portal sites secret set`")
        self.session = requests.Session()
        self.session.auth = (user, password)
        self.session.verify = option_bool(options, "verify_tls", True)
        self.timeout = read_timeout(options)

    def call(self, method: str, path: str, body: dict | None = None):
        """Send one REST call and return its JSON, or raise a Controller*Error."""
        response = send(self.session, method, self.base + path, what=WHAT, timeout=self.timeout, json=body)
        if response.status_code == 401:
            raise ControllerAuthError(f"{WHAT} at {self.host} refused the portal's router user: check the "
                                      f"secrets rest_username/rest_password and that the user's group allows 'rest-api'")
        if response.status_code == 403:
            raise ControllerAuthError(f"{WHAT} at {self.host} forbids {method} {path.split('?')[0]}: "
                                      f"give the portal's router user a group with 'write' and 'rest-api'")
        if response.status_code in (400, 404, 406):
            try:
                detail = response.json().get("detail") or response.json().get("message", "")
            except (ValueError, AttributeError):
                detail = ""
            raise ControllerRejectedError(
                f"{WHAT} at {self.host} refused {method} {path.split('?')[0]}: {detail or response.status_code}; "
                f"check the hotspot setup and option rest_profile (RouterOS v7.1+ needed)",
                http_code=response.status_code, vendor_text=response.text)
        if not 200 <= response.status_code < 300:
            raise server_error(WHAT, self.base, response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise server_error(WHAT, self.base, response) from None


def rest_login(arrival: Arrival, settings: SiteSettings) -> Grant:
    """Check the host is on the router, log it in as a one-time user, remove unused portal users."""
    ip = valid_ip(arrival.client_ip)
    if not arrival.client_mac or not ip:
        raise ArrivalError("REST login needs the client's MAC and IP: the router sent none or a malformed one")
    router = RestRouter(settings)
    host = find_host(router, arrival.client_mac, ip)
    if host is None:
        raise NotAClientError(f"{WHAT} at {router.host} lists no hotspot host with the session's MAC and IP: "
                              f"the arrival named a device that is not connected")
    if str(host.get("authorized", "")).lower() == "true":
        return Grant(kind="done", url=arrival.original_url)  # already logged in: make no user
    name = one_time_user()
    password = token_source.token_urlsafe(12)
    user = {"name": name, "password": password, "mac-address": arrival.client_mac,
            "limit-uptime": f"{settings.minutes}m", "comment": COMMENT}
    if settings.options.get("rest_profile"):
        user["profile"] = settings.options["rest_profile"]
    if settings.quota_mb:
        user["limit-bytes-total"] = str(settings.quota_mb * 1024 * 1024)
    router.call("PUT", "/ip/hotspot/user", user)
    try:
        router.call("POST", "/ip/hotspot/active/login", {
            "user": name, "password": password, "mac-address": arrival.client_mac, "ip": ip,
        })
    finally:
        sweep_users(router, just_made=name)
    return Grant(kind="done", url=arrival.original_url)


def find_host(router: "RestRouter", mac: str, ip: str) -> dict | None:
    """The router's hotspot host entry for *mac* at *ip*, or None."""
    for host in router.call("GET", f"/ip/hotspot/host?mac-address={quote(mac)}") or []:
        if not isinstance(host, dict) or str(host.get("mac-address", "")).upper() != mac.upper():
            continue
        # address: the client's own; to-address: after the hotspot's one-to-one NAT.
        if ip in (valid_ip(host.get("address")), valid_ip(host.get("to-address"))):
            return host
    return None


def sweep_users(router: "RestRouter", *, just_made: str, now: float | None = None) -> int:
    """Remove every portal user without an active session; return how many were removed."""
    now = time.time() if now is None else now
    try:
        active = {str(entry.get("user", "")) for entry in router.call("GET", "/ip/hotspot/active") or []
                  if isinstance(entry, dict)}
        removed = 0
        for user in router.call("GET", f"/ip/hotspot/user?comment={quote(COMMENT)}") or []:
            name = str(user.get("name", "")) if isinstance(user, dict) else ""
            if not name or name in active or user.get("comment") != COMMENT:
                continue
            if name != just_made and now - created_at(name) < SWEEP_AGE:
                continue
            router.call("DELETE", f"/ip/hotspot/user/{quote(str(user.get('.id', '')), safe='*')}")
            removed += 1
        return removed
    except HookError:
        # The grant itself stands; the next grant's sweep removes what is left.
        return 0
