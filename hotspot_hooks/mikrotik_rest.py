"""MikroTik RouterOS v7 REST: log the client in from the server side (login_mode ``rest``).

Only for sites whose router the portal can reach (VPN or tunnel, gateways.md
§1.2(d)). The portal keeps one hotspot user per device, ``portal-<mac>``,
recreated on every grant so that its ``limit-uptime`` counter starts afresh,
then runs ``/ip hotspot active login`` for the client's MAC and IP:

1. ``GET    /rest/ip/hotspot/user?name=portal-<mac>``   find an old one
2. ``DELETE /rest/ip/hotspot/user/<.id>``                 drop it (counters)
3. ``PUT    /rest/ip/hotspot/user``                       create it with the limits
4. ``POST   /rest/ip/hotspot/active/login``               log the host in

Rate limits come from the user profile (option ``rest_profile``), since
RouterOS has no per-user rate field. HTTP Basic auth with a router user of
group ``write`` (secrets ``rest_username``/``rest_password``); options
``rest_url`` (``https://10.8.0.12``), ``verify_tls``, ``controller_timeout``.
"""
from __future__ import annotations

import secrets as token_source
from urllib.parse import quote

import requests

from .base import (Arrival, ArrivalError, ControllerAuthError, ControllerRejectedError, Grant,
                   SiteSettings)
from .controller_http import base_url, host_of, option_bool, read_timeout, send, server_error

WHAT = "MikroTik REST API"


def user_name(mac: str) -> str:
    """The hotspot user the portal keeps for one device."""
    return "portal-" + mac.replace(":", "").lower()


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
    """Create the device's hotspot user with the site's limits and log the client in."""
    if not arrival.client_mac or not arrival.client_ip:
        raise ArrivalError("REST login needs the client's MAC and IP: the router sent none")
    router = RestRouter(settings)
    name = user_name(arrival.client_mac)
    for old in router.call("GET", f"/ip/hotspot/user?name={quote(name)}") or []:
        router.call("DELETE", f"/ip/hotspot/user/{quote(str(old.get('.id', '')), safe='*')}")
    password = token_source.token_urlsafe(12)  # never reused: each grant makes a new user
    user = {"name": name, "password": password, "mac-address": arrival.client_mac,
            "limit-uptime": f"{settings.minutes}m", "comment": "captive portal"}
    if settings.options.get("rest_profile"):
        user["profile"] = settings.options["rest_profile"]
    if settings.quota_mb:
        user["limit-bytes-total"] = str(settings.quota_mb * 1024 * 1024)
    router.call("PUT", "/ip/hotspot/user", user)
    router.call("POST", "/ip/hotspot/active/login", {
        "user": name, "password": password, "mac-address": arrival.client_mac, "ip": arrival.client_ip,
    })
    return Grant(kind="done", url=arrival.original_url)
