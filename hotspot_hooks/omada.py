"""TP-Link Omada external portal (controller 5.x): the portal authorizes through the controller.

Arrival (gateways.md §6): the controller sends the phone here with ``clientMac``,
``apMac``, ``ssidName``, ``radioId``, ``site``, ``t``, ``redirectUrl`` (a gateway
portal sends ``gatewayMac`` and ``vid`` instead of the AP fields). MACs come in
dash form, ``AA-BB-CC-DD-EE-FF``; nothing is signed.

Client check: the hotspot operator cannot list clients, so the portal asks the
controller's Open API (5.9+, Settings > Platform Integration > Open API, an
application in client mode with the Viewer role) whether the device is connected
to the site: ``POST /openapi/authorize/token?grant_type=client_credentials``, then
``GET /openapi/v1/<controller_id>/sites/<omada_site_id>/clients`` (paged) with
``Authorization: AccessToken=<token>``. A device not listed, or listed on another
AP than the arrival named, is refused before any grant.

Grant: log in as a **Hotspot Manager operator** (not the controller admin) at
``/<controller_id>/api/v2/hotspot/login``, then post ``extPortal/auth`` with the
``Csrf-Token`` header and the session cookie, ``TPOMADA_SESSIONID`` on
controllers >= 5.11 and ``TPEAP_SESSIONID`` before.

The site sent to the controller is the site option ``omada_site`` (the value the
controller puts in its redirect's ``site``), never the arrival's ``site``.

The unit of ``time`` is disputed (TP-Link's FAQ says microseconds, its sample
and field reports say milliseconds), so it is the site option
``omada_time_unit`` (``ms``, the default, or ``us``).

Site options: ``controller_url`` (``https://host:8043``), ``omada_controller_id``,
``omada_site``, ``omada_site_id`` (the Open API's site id), ``omada_time_unit``,
``verify_tls``, ``controller_timeout``. Secrets: ``controller_username``,
``controller_password`` (the operator), ``omada_client_id``, ``omada_client_secret``
(the Open API application).
"""
from __future__ import annotations

import hashlib
import re
import threading
from typing import ClassVar, Mapping

import requests

from .base import (Arrival, ArrivalError, ControllerAuthError, ControllerRejectedError, Grant,
                   HookError, NotAClientError, SiteSettings)
from .controller_http import (SessionCache, base_url, host_of, option_bool, read_timeout, send, server_error,
                              valid_ip)
from .urls import normalize_mac, safe_http_url

WHAT = "Omada controller"
SESSION_COOKIES = ("TPOMADA_SESSIONID", "TPEAP_SESSIONID")  # >= 5.11, then older
TIME_UNITS = {"ms": 1_000, "us": 1_000_000}
_CONTROLLER_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")
_NAME = re.compile(r"^[\w .-]{1,64}$")
_SITE_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")
#: Open API answers meaning "fetch a new access token" (expired, invalid).
TOKEN_ERRORS = (-44112, -44113)
PAGE_SIZE = 500
MAX_PAGES = 20   # 10,000 clients: far beyond one hotspot site
_sessions = SessionCache()
_open_api = SessionCache()


def dash_mac(value: str | None) -> str:
    """Return a MAC in Omada's ``AA-BB-CC-DD-EE-FF`` form, or ``""``."""
    return normalize_mac(value).replace(":", "-")


class OmadaClient:
    """One logged-in hotspot-operator session on an Omada controller, reused across grants."""

    def __init__(self, base: str, controller_id: str, name: str, password: str, *, verify: bool):
        self.api = f"{base}/{controller_id}/api/v2/hotspot"
        self.host = host_of(base)
        self._name = name
        self._password = password
        self.session = requests.Session()
        self.session.verify = verify
        self.token = ""
        self.cookie = ""
        self.lock = threading.Lock()

    def login(self, timeout: float) -> None:
        """Log in as the hotspot operator; keep the CSRF token and the session cookie."""
        self.token = self.cookie = ""
        url = f"{self.api}/login"
        response = send(self.session, "POST", url, what=WHAT, timeout=timeout,
                        json={"name": self._name, "password": self._password})
        if response.status_code in (401, 403):
            raise self._auth_error(f"HTTP {response.status_code}")
        data = _json(response)
        if response.status_code != 200 or data is None:
            raise server_error(WHAT, url, response)
        if data.get("errorCode") != 0:
            raise self._auth_error(f"errorCode {data.get('errorCode')}: {data.get('msg', '')}")
        self.token = str((data.get("result") or {}).get("token") or "")
        for name in SESSION_COOKIES:
            value = response.cookies.get(name)
            if value:
                # Sent by hand: the controller may mark it Secure even behind plain http.
                self.cookie = f"{name}={value}"
                break
        if not self.token:
            raise ControllerRejectedError(f"{WHAT} at {self.host} accepted the login but sent no token: "
                                          f"is omada_controller_id right?", http_code=response.status_code,
                                          vendor_text=response.text)

    def _auth_error(self, detail: str) -> ControllerAuthError:
        return ControllerAuthError(
            f"{WHAT} at {self.host} refused the hotspot operator login ({detail}): check the operator "
            f"in Hotspot Manager > Operator and the site secrets controller_username/controller_password"
        )

    def _post_auth(self, body: dict, timeout: float) -> requests.Response:
        headers = {"Csrf-Token": self.token}
        if self.cookie:
            headers["Cookie"] = self.cookie
        return send(self.session, "POST", f"{self.api}/extPortal/auth", what=WHAT, timeout=timeout,
                    json=body, headers=headers)

    def authorize(self, body: dict, *, timeout: float) -> None:
        """Post ``extPortal/auth``; log in first, and once more when the session has expired."""
        with self.lock:
            if not self.token:
                self.login(timeout)
            response = self._post_auth(body, timeout)
            data = _json(response)
            # Omada's code for an expired session is undocumented; it answers 401, a redirect
            # to its login page, or a non-zero errorCode. Authorizing twice is harmless,
            # so every such answer gets one fresh login and one retry.
            if response.status_code in (302, 401, 403) or (response.status_code == 200 and data
                                                           and data.get("errorCode") != 0):
                self.login(timeout)
                response = self._post_auth(body, timeout)
                data = _json(response)
            if response.status_code in (401, 403):
                self.token = ""
                raise self._auth_error(f"HTTP {response.status_code} on extPortal/auth")
            if response.status_code != 200 or data is None:
                raise server_error(WHAT, f"{self.api}/extPortal/auth", response)
            if data.get("errorCode") != 0:
                raise _rejected(self.host, "extPortal/auth", response, data,
                                "check that the SSID's portal is 'External Portal Server' "
                                f"and the operator manages site {body.get('site')!r}")


def _rejected(host: str, call: str, response, data: dict, hint: str) -> ControllerRejectedError:
    """The error for an answer with a non-zero errorCode, with what the operator should check."""
    return ControllerRejectedError(
        f"{WHAT} at {host} refused {call} (errorCode {data.get('errorCode')}: {data.get('msg', '')}): {hint}",
        http_code=200, vendor_text=response.text)


class OmadaOpenApi:
    """The controller's Open API in client-credentials mode, used to list a site's clients."""

    def __init__(self, base: str, controller_id: str, client_id: str, client_secret: str, *, verify: bool):
        self.base, self.controller_id = base, controller_id
        self.host = host_of(base)
        self._client_id, self._client_secret = client_id, client_secret
        self.session = requests.Session()
        self.session.verify = verify
        self.token = ""
        self.lock = threading.Lock()

    def _fetch_token(self, timeout: float) -> None:
        self.token = ""
        url = f"{self.base}/openapi/authorize/token?grant_type=client_credentials"
        response = send(self.session, "POST", url, what=WHAT, timeout=timeout,
                        json={"omadacId": self.controller_id, "client_id": self._client_id,
                              "client_secret": self._client_secret})
        data = _json(response)
        if response.status_code != 200 or data is None:
            raise server_error(WHAT, url, response)
        self.token = str((data.get("result") or {}).get("accessToken") or "")
        if data.get("errorCode") != 0 or not self.token:
            self.token = ""
            raise ControllerAuthError(
                f"{WHAT} at {self.host} refused the portal's Open API application (errorCode "
                f"{data.get('errorCode')}): check the site secrets omada_client_id/omada_client_secret "
                f"(Settings > Platform Integration > Open API, client mode, Viewer role)")

    def _page(self, site_id: str, page: int, timeout: float) -> tuple[requests.Response, dict | None]:
        url = f"{self.base}/openapi/v1/{self.controller_id}/sites/{site_id}/clients"
        response = send(self.session, "GET", url, what=WHAT, timeout=timeout,
                        params={"page": page, "pageSize": PAGE_SIZE},
                        headers={"Authorization": f"AccessToken={self.token}"})
        return response, _json(response)

    def find_client(self, site_id: str, mac: str, *, timeout: float) -> dict | None:
        """The connected client *mac* (dash form) of the site, or None."""
        with self.lock:
            if not self.token:
                self._fetch_token(timeout)
            for page in range(1, MAX_PAGES + 1):
                response, data = self._page(site_id, page, timeout)
                if response.status_code == 401 or (data and data.get("errorCode") in TOKEN_ERRORS):
                    self._fetch_token(timeout)  # access tokens live two hours
                    response, data = self._page(site_id, page, timeout)
                if response.status_code != 200 or data is None:
                    raise server_error(WHAT, f"{self.base}/openapi/v1", response)
                if data.get("errorCode") != 0:
                    raise _rejected(self.host, "the client list", response, data,
                                    "check the site option omada_site_id and that the Open API "
                                    "application may view that site")
                result = data.get("result") or {}
                rows = result.get("data") or []
                for row in rows:
                    if isinstance(row, dict) and dash_mac(str(row.get("mac") or "")) == mac:
                        return row
                total = result.get("totalRows")
                if not rows or not isinstance(total, int) or page * PAGE_SIZE >= total:
                    return None
        return None


def open_api_for(settings: SiteSettings) -> OmadaOpenApi:
    """Return the cached Open API client of the site's controller and application."""
    options = settings.options
    base = base_url(options.get("controller_url"), option="controller_url")
    controller_id = _controller_id(options)
    client_id = settings.secrets.get("omada_client_id", "")
    client_secret = settings.secrets.get("omada_client_secret", "")
    if not client_id or not client_secret:
        raise ControllerAuthError("the site has no omada_client_id/omada_client_secret secret (an Open API "
                                  "application in client mode, Viewer role) to check that a device is "
                                  "connected: set them with `flask --app portal sites secret set`")
    verify = option_bool(options, "verify_tls", True)
    key = (base, controller_id, client_id, hashlib.sha256(client_secret.encode()).hexdigest(), verify)
    return _open_api.get(key, lambda: OmadaOpenApi(base, controller_id, client_id, client_secret, verify=verify))


def _controller_id(options) -> str:
    controller_id = (options.get("omada_controller_id") or "").strip()
    if not _CONTROLLER_ID.match(controller_id):
        raise HookError("site option omada_controller_id is missing: copy the id from the "
                        "controller's address bar (https://host:8043/<id>/...)")
    return controller_id


def _option(options, name: str, pattern: re.Pattern, what: str) -> str:
    value = (options.get(name) or "").strip()
    if not pattern.match(value):
        raise HookError(f"site option {name} is missing or malformed: {what}; set it with "
                        f"`flask --app portal sites set SITE_ID {name}=...`")
    return value


def _json(response: requests.Response) -> dict | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def client_for(settings: SiteSettings) -> OmadaClient:
    """Return the cached client of the site's controller and operator."""
    options = settings.options
    base = base_url(options.get("controller_url"), option="controller_url")
    controller_id = _controller_id(options)
    name = settings.secrets.get("controller_username") or options.get("controller_username", "")
    password = settings.secrets.get("controller_password", "")
    if not name or not password:
        raise ControllerAuthError("the site has no controller_username/controller_password secret "
                                  "(the Omada hotspot operator): set them with `flask --app portal sites secret set`")
    verify = option_bool(options, "verify_tls", True)
    key = (base, controller_id, name, hashlib.sha256(password.encode()).hexdigest(), verify)
    return _sessions.get(key, lambda: OmadaClient(base, controller_id, name, password, verify=verify))


class OmadaHook:
    """Adapter for TP-Link Omada's external portal server (controller 5.0.15+)."""

    vendor: ClassVar[str] = "omada"
    server_side: ClassVar[bool] = True
    signed: ClassVar[bool] = False   # nothing in the redirect is signed
    supports_deauth: ClassVar[bool] = False

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Read the controller's redirect parameters (EAP or gateway portal); ``site`` is kept for logs."""
        client_mac = dash_mac(args.get("clientMac"))
        if not client_mac:
            raise ArrivalError("Omada sent no usable clientMac")
        site = (args.get("site") or "").strip()
        if not _NAME.match(site):
            raise ArrivalError("Omada sent no usable site name")
        ap_mac, gateway_mac = dash_mac(args.get("apMac")), dash_mac(args.get("gatewayMac"))
        if not (ap_mac or gateway_mac):
            raise ArrivalError("Omada sent neither apMac nor gatewayMac")
        extra = {"site": site}
        if ap_mac:
            radio = (args.get("radioId") or "0").strip()
            extra.update(ap_mac=ap_mac, ssid=(args.get("ssidName") or "")[:64],
                         radio_id=radio if radio in ("0", "1", "2", "3") else "0")
        else:
            vid = (args.get("vid") or "").strip()
            extra.update(gateway_mac=gateway_mac, vid=vid if vid.isdigit() else "")
        return Arrival(
            vendor=self.vendor,
            gateway_id=ap_mac or gateway_mac,
            client_mac=client_mac.replace("-", ":"),
            client_ip=valid_ip(args.get("clientIp")),
            original_url=safe_http_url(args.get("redirectUrl")),
            extra=extra,
        )

    def verify_client(self, arrival: Arrival, settings: SiteSettings) -> None:
        """Raise NotAClientError unless the site's client list has the device (on the arrival's AP)."""
        site_id = _option(settings.options, "omada_site_id", _SITE_ID,
                          "the Open API's site id (GET /openapi/v1/<controller_id>/sites lists them)")
        row = open_api_for(settings).find_client(site_id, dash_mac(arrival.client_mac),
                                                 timeout=read_timeout(settings.options))
        if row is None:
            raise NotAClientError(f"{WHAT} lists no such connected client on site {site_id!r}: "
                                  f"the arrival named a device that is not connected")
        listed_ap = dash_mac(str(row.get("apMac") or ""))
        if listed_ap and arrival.extra.get("ap_mac") and listed_ap != arrival.extra["ap_mac"]:
            raise NotAClientError(f"{WHAT} lists the client on another AP than the arrival named "
                                  f"(site {site_id!r})")

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Check the client is there, then authorize it on the controller for ``settings.minutes``."""
        unit = (settings.options.get("omada_time_unit") or "ms").lower()
        if unit not in TIME_UNITS:
            raise HookError("site option omada_time_unit must be ms or us")
        site = _option(settings.options, "omada_site", _NAME,
                       "the site name the controller sends in its redirect (site=...)")
        client = client_for(settings)  # configuration gaps are reported before any call
        self.verify_client(arrival, settings)
        extra = arrival.extra
        body = {"clientMac": arrival.client_mac.replace(":", "-"), "site": site,
                "time": settings.minutes * 60 * TIME_UNITS[unit], "authType": 4}
        if extra.get("ap_mac"):
            body.update(apMac=extra["ap_mac"], ssidName=extra.get("ssid", ""),
                        radioId=int(extra.get("radio_id") or 0))
        else:
            body.update(gatewayMac=extra["gateway_mac"], vid=int(extra.get("vid") or 0))
        client.authorize(body, timeout=read_timeout(settings.options))
        return Grant(kind="done", url=arrival.original_url)


def forget_sessions() -> None:
    """Drop every cached controller session and Open API token."""
    _sessions.clear()
    _open_api.clear()
