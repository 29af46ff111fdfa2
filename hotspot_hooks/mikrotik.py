"""MikroTik RouterOS Hotspot: the router's login.html posts its variables to us.

Access is granted by the resident's browser, which submits to the router's
``link-login-only`` (only the client can reach the router's LAN address).
Two login modes, chosen per site:

- ``trial`` (default): ``GET <link-login-only>?dst=…&username=T-<mac>``; needs
  ``login-by=trial`` on the hotspot profile. Works without JavaScript.
- ``account``: a shared hotspot user, logged in with the CHAP response to the
  router's ``chap-id``/``chap-challenge``. An arrival without a challenge (PAP) is
  refused: the password would sit in clear in the resident's page, and anyone can
  post an arrival without one. A site that accepts that (e.g. an HTTPS-only login
  with a password for this router alone) sets ``allow_pap=yes`` and its own
  ``password`` secret; the fleet password is never sent in clear.
- ``rest``: the portal logs the client in itself over RouterOS v7 REST, for
  sites whose router it can reach (see :mod:`hotspot_hooks.mikrotik_rest`).

Nothing the router posts is signed (gateways.md §1.1), so the portal treats
every field as untrusted input: the login URL's host must be one of the site's
``router_hosts`` (:mod:`hotspot_hooks.guards`).
"""
from __future__ import annotations

import hashlib
import re
from typing import ClassVar, Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from .base import Arrival, ArrivalError, Grant, SiteSettings
from .guards import chap_password, clear_password, pinned
from .urls import normalize_mac, safe_http_url

_OCTAL = re.compile(r"\\([0-7]{1,3})")
_OCTAL_STRING = re.compile(r"(?:\\[0-7]{1,3})+")


def octal_to_bytes(escaped: str) -> bytes:
    """Decode RouterOS's octal-escaped JS string (``\\357\\015…``) to raw bytes."""
    return bytes(int(digits, 8) & 0xFF for digits in _OCTAL.findall(escaped or ""))


def chap_response(chap_id: str, password: str, chap_challenge: str) -> str:
    """Return hex MD5(id ‖ password ‖ challenge), exactly as the router's md5.js computes it."""
    # md5.js keeps only the low byte of each character: Latin-1 matches it.
    secret = password.encode("latin-1", errors="replace")
    return hashlib.md5(octal_to_bytes(chap_id) + secret + octal_to_bytes(chap_challenge)).hexdigest()


def _login_url(args: Mapping[str, str]) -> str:
    """The router's login URL without ``dst``, from link-login-only or link-login."""
    url = safe_http_url(args.get("link-login-only"))
    if url:
        return url
    full = safe_http_url(args.get("link-login"))
    if full:
        parts = urlsplit(full)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return ""


class MikrotikHook:
    """Adapter for MikroTik RouterOS Hotspot (v6 and v7)."""

    vendor: ClassVar[str] = "mikrotik"
    # Browser-side by default; a site in login_mode "rest" makes authorize() call its router.
    server_side: ClassVar[bool] = False
    signed: ClassVar[bool] = False
    supports_deauth: ClassVar[bool] = False

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Read the variables the router's login.html posted."""
        # Without $(identity) the site is unknown, but the resident can still be let online.
        identity = (args.get("identity") or "").strip()[:128]
        login_url = _login_url(args)
        if not login_url:
            raise ArrivalError("the router did not send a usable $(link-login-only)")
        extra = {"login_url": login_url}
        for name in ("chap-id", "chap-challenge"):
            value = args.get(name) or ""
            if value and not _OCTAL_STRING.fullmatch(value):
                raise ArrivalError(f"malformed {name}")
            extra[name] = value[:256]
        if extra["chap-id"] and len(octal_to_bytes(extra["chap-id"])) != 1:
            raise ArrivalError("malformed chap-id: one byte expected")
        if extra["chap-challenge"] and len(octal_to_bytes(extra["chap-challenge"])) != 16:
            raise ArrivalError("malformed chap-challenge: 16 bytes expected")
        if args.get("trial"):
            extra["trial"] = "yes" if args.get("trial") == "yes" else "no"
        return Arrival(
            vendor=self.vendor,
            gateway_id=identity,
            client_mac=normalize_mac(args.get("mac")),
            client_ip=(args.get("ip") or "").strip()[:45],
            original_url=safe_http_url(args.get("link-orig")),
            extra=extra,
        )

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Return the browser action that logs the client in on the router."""
        if settings.login_mode == "rest":
            from .mikrotik_rest import rest_login  # only REST sites pay for the import

            return rest_login(arrival, settings)
        login_url = pinned(arrival.extra["login_url"], settings)
        dst = arrival.original_url
        if settings.login_mode in ("", "trial"):
            if not arrival.client_mac:
                raise ArrivalError("trial login needs the client's MAC: the router sent none")
            query = {"username": f"T-{arrival.client_mac}"}
            if dst:
                query["dst"] = dst
            return Grant(kind="redirect", url=f"{login_url}?{urlencode(query)}")
        chap_id = arrival.extra.get("chap-id", "")
        if chap_id and arrival.extra.get("chap-challenge"):
            password = chap_response(chap_id, chap_password(settings), arrival.extra["chap-challenge"])
        else:
            password = clear_password(settings, "MikroTik sent no CHAP challenge")
        fields = {"username": settings.username, "password": password, "popup": "false"}
        if dst:
            fields["dst"] = dst
        return Grant(kind="form", url=login_url, method="post", fields=fields)
