"""UniFi Network external portal: the AP sends the phone here, the portal asks the controller.

Arrival (gateways.md §4.1): UniFi forces the path ``/guest/s/<site>/`` and the
query ``ap``, ``id`` (client MAC), ``t``, ``url``, ``ssid``; nothing is signed
and no client IP is sent. The portal's alias route passes ``<site>`` as ``site``.

Grant (§4.2): the portal logs in to the controller with a local admin, checks that
the device is there (``GET /api/s/<site>/stat/sta/<mac>``: an online client, on the
AP the arrival named when the controller reports one), then posts
``authorize-guest`` to ``/api/s/<site>/cmd/stamgr``. Two flavours:

- classic controller (software, CloudKey Gen1): ``POST /api/login``, cookie ``unifises``;
- UniFi OS (UDM, UCG, CloudKey Gen2+): ``POST /api/auth/login``, cookie ``TOKEN``
  (a JWT), every Network path prefixed ``/proxy/network`` and every non-GET
  request carrying ``X-CSRF-Token`` = the JWT's ``csrfToken`` claim (a missing
  token is a silent 403, §4.6).

The controller site is the site option ``unifi_site`` (``default`` when unset),
never the arrival's path: anyone can type ``/guest/s/<another site>/``.

Site options: ``controller_url`` (required), ``unifi_site``, ``unifi_os``
(``auto``/``yes``/``no``), ``unifi_bytes_unit`` (``mb``/``bytes``: the quota unit
is disputed, §4.3), ``verify_tls``, ``controller_timeout``. Secrets:
``controller_username``, ``controller_password``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from typing import ClassVar, Mapping

import requests

from .base import (Arrival, ArrivalError, ControllerAuthError, ControllerRejectedError, Grant,
                   HookError, NotAClientError, SiteSettings)
from .controller_http import SessionCache, base_url, host_of, option_bool, read_timeout, send, server_error
from .urls import normalize_mac, safe_http_url

_SITE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_sessions = SessionCache()
WHAT = "UniFi controller"


def csrf_from_jwt(token: str | None) -> str:
    """Return the ``csrfToken`` claim of a UniFi OS ``TOKEN`` cookie, or ``""``."""
    try:
        payload = (token or "").split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("csrfToken") or "")
    except (IndexError, ValueError, AttributeError):
        return ""


class UnifiClient:
    """One logged-in connection to a UniFi Network controller, reused across grants."""

    def __init__(self, base: str, username: str, password: str, *, verify: bool, mode: str):
        self.base = base
        self.host = host_of(base)
        self._username = username
        self._password = password
        self.session = requests.Session()
        self.session.verify = verify
        self.unifi_os: bool | None = {"yes": True, "no": False}.get(mode)
        self.csrf = ""
        self.logged_in = False
        self.lock = threading.Lock()

    @property
    def prefix(self) -> str:
        return "/proxy/network" if self.unifi_os else ""

    def login(self, timeout: float) -> None:
        """Log in (detecting UniFi OS first when unknown) and keep the session cookie."""
        if self.unifi_os is None:
            # UniFi OS answers its web root with 200; a classic controller redirects to /manage.
            probe = send(self.session, "GET", self.base + "/", what=WHAT, timeout=timeout)
            self.unifi_os = probe.status_code == 200
        self.session.cookies.clear()
        self.csrf, self.logged_in = "", False
        path = "/api/auth/login" if self.unifi_os else "/api/login"
        response = send(self.session, "POST", self.base + path, what=WHAT, timeout=timeout,
                        json={"username": self._username, "password": self._password})
        if response.status_code in (400, 401, 403):
            raise ControllerAuthError(
                f"{WHAT} at {self.host} refused the portal's login (HTTP {response.status_code}): "
                f"check the site secrets controller_username/controller_password; use a local "
                f"admin account, not a UI.com (SSO/MFA) one"
            )
        if response.status_code != 200:
            raise server_error(WHAT, self.base + path, response)
        if self.unifi_os:
            self.csrf = (response.headers.get("X-CSRF-Token")
                         or csrf_from_jwt(self.session.cookies.get("TOKEN")))
        self.logged_in = True

    def _send(self, method: str, path: str, body: dict | None, timeout: float) -> requests.Response:
        # UniFi OS wants the CSRF token on every non-GET request.
        headers = {"X-CSRF-Token": self.csrf} if self.csrf and method != "GET" else {}
        response = send(self.session, method, self.base + self.prefix + path, what=WHAT,
                        timeout=timeout, json=body, headers=headers)
        # UniFi OS may hand out a fresh CSRF token with any answer.
        self.csrf = response.headers.get("X-Updated-CSRF-Token") or self.csrf
        return response

    def _call(self, method: str, path: str, body: dict | None, *, what: str, site: str,
              timeout: float, missing_ok: tuple[str, ...] = ()) -> list:
        """One API call with login or re-login as needed; the answer's ``data``."""
        with self.lock:
            if not self.logged_in:
                self.login(timeout)
            response = self._send(method, path, body, timeout)
            if response.status_code in (401, 403):
                # 401: the cached session expired; 403: a stale or missing CSRF token.
                self.login(timeout)
                response = self._send(method, path, body, timeout)
            return self._result(response, what, site, missing_ok)

    def command(self, site: str, body: dict, *, timeout: float) -> list:
        """Post a ``stamgr`` command on *site*."""
        return self._call("POST", f"/api/s/{site}/cmd/stamgr", body, what=body["cmd"], site=site,
                          timeout=timeout)

    def station(self, site: str, mac: str, *, timeout: float) -> dict | None:
        """The online client *mac* of *site* (``stat/sta/<mac>``), or None if it is not online."""
        # An unknown station is an empty list on some versions, UnknownStation on others.
        data = self._call("GET", f"/api/s/{site}/stat/sta/{mac}", None, what="stat/sta", site=site,
                          timeout=timeout, missing_ok=("api.err.UnknownStation",))
        return next((entry for entry in data if isinstance(entry, dict)
                     and str(entry.get("mac", "")).lower() == mac), None)

    def _result(self, response: requests.Response, cmd: str, site: str, missing_ok: tuple = ()) -> list:
        code = response.status_code
        try:
            meta = response.json().get("meta", {})
        except (ValueError, AttributeError):
            meta = None
        if code == 403:
            self.logged_in = False
            missing = "no CSRF token was found at login" if self.unifi_os and not self.csrf else "the CSRF token was refused"
            raise ControllerRejectedError(
                f"{WHAT} at {self.host} answered 403 to {cmd} ({missing}): the account may lack "
                f"rights on site {site!r}, or unifi_os is wrong for this controller",
                http_code=code, vendor_text=response.text)
        if code == 401 and (meta or {}).get("msg") == "api.err.LoginRequired":
            self.logged_in = False
            raise ControllerAuthError(f"{WHAT} at {self.host} dropped the session right after login: "
                                      f"check the account's role (it must manage the Network app)")
        if meta is None or (code >= 500) or not 200 <= code < 500:
            raise server_error(WHAT, self.base, response)
        if meta.get("rc") != "ok":
            msg = str(meta.get("msg", "no message"))
            if msg in missing_ok:
                return []
            hint = (f"check the site name (option unifi_site, now {site!r})"
                    if msg in ("api.err.NoSiteContext", "api.err.InvalidObject") else "see the controller's events")
            raise ControllerRejectedError(f"{WHAT} at {self.host} refused {cmd}: {msg}; {hint}",
                                          http_code=code, vendor_text=response.text)
        data = response.json().get("data", [])
        return data if isinstance(data, list) else []


def client_for(settings: SiteSettings) -> UnifiClient:
    """Return the cached client of the site's controller and account."""
    options = settings.options
    base = base_url(options.get("controller_url"), option="controller_url")
    username = settings.secrets.get("controller_username") or options.get("controller_username", "")
    password = settings.secrets.get("controller_password", "")
    if not username or not password:
        raise ControllerAuthError("the site has no controller_username/controller_password secret: "
                                  "set them with `flask --app portal sites secret set`")
    mode = (options.get("unifi_os") or "auto").lower()
    verify = option_bool(options, "verify_tls", True)
    # The password is part of the key (hashed) so a changed secret opens a new session.
    key = (base, username, hashlib.sha256(password.encode()).hexdigest(), mode, verify)
    return _sessions.get(key, lambda: UnifiClient(base, username, password, verify=verify, mode=mode))


class UnifiHook:
    """Adapter for UniFi Network's external portal server (classic and UniFi OS)."""

    vendor: ClassVar[str] = "unifi"
    server_side: ClassVar[bool] = True
    signed: ClassVar[bool] = False  # nothing in the redirect is signed
    supports_deauth: ClassVar[bool] = True

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Read ``ap``, ``id``, ``url``, ``ssid`` and the path's ``site`` (kept for logs only)."""
        client_mac = normalize_mac(args.get("id"))
        if not client_mac:
            raise ArrivalError("UniFi sent no usable client MAC (id=)")
        ap_mac = normalize_mac(args.get("ap")).lower()
        site = (args.get("site") or "").strip()
        return Arrival(
            vendor=self.vendor,
            gateway_id=ap_mac,
            client_mac=client_mac,
            original_url=safe_http_url(args.get("url")),
            extra={"site": site if _SITE.match(site) else "", "ap_mac": ap_mac,
                   "ssid": (args.get("ssid") or "")[:64]},
        )

    def verify_client(self, arrival: Arrival, settings: SiteSettings) -> None:
        """Raise NotAClientError unless the controller lists the client online on the arrival's AP."""
        site = _site(settings)
        station = client_for(settings).station(site, arrival.client_mac.lower(),
                                               timeout=read_timeout(settings.options))
        if station is None:
            raise NotAClientError(f"{WHAT} lists no such online client on site {site!r}: "
                                  f"the arrival named a device that is not connected")
        ap_mac = normalize_mac(str(station.get("ap_mac") or "")).lower()
        if ap_mac and arrival.extra.get("ap_mac") and ap_mac != arrival.extra["ap_mac"]:
            raise NotAClientError(f"{WHAT} lists the client on another AP than the arrival named "
                                  f"(site {site!r})")

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Check the client is there, then authorize it for ``settings.minutes`` with the site's limits."""
        self.verify_client(arrival, settings)
        body = {"cmd": "authorize-guest", "mac": arrival.client_mac.lower(), "minutes": settings.minutes}
        if settings.upload_kbps:
            body["up"] = settings.upload_kbps
        if settings.download_kbps:
            body["down"] = settings.download_kbps
        if settings.quota_mb:
            unit = (settings.options.get("unifi_bytes_unit") or "mb").lower()
            body["bytes"] = settings.quota_mb * 1024 * 1024 if unit == "bytes" else settings.quota_mb
        if arrival.extra.get("ap_mac"):
            body["ap_mac"] = arrival.extra["ap_mac"]  # lets the controller find the AP at once
        client_for(settings).command(_site(settings), body, timeout=read_timeout(settings.options))
        return Grant(kind="done", url=arrival.original_url)

    def deauthorize(self, arrival: Arrival, settings: SiteSettings) -> None:
        """End the guest authorization of the arrival's client."""
        body = {"cmd": "unauthorize-guest", "mac": arrival.client_mac.lower()}
        client_for(settings).command(_site(settings), body, timeout=read_timeout(settings.options))


def _site(settings: SiteSettings) -> str:
    """The controller site of a portal site: its option, never the arrival's path."""
    site = (settings.options.get("unifi_site") or "default").strip()
    if not _SITE.match(site):
        raise HookError("site option unifi_site must be the controller's site name (letters, digits, - or _)")
    return site


def forget_sessions() -> None:
    """Drop every cached controller session."""
    _sessions.clear()
