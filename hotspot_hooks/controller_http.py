"""HTTP plumbing shared by the adapters that call a controller (UniFi, Omada, MikroTik REST).

One place turns ``requests`` failures into :class:`ControllerUnreachableError`
with a message that tells the operator what to check, so each vendor module
only reads its own vendor's answers. Messages name the controller's host but
never a credential, a client MAC or a client IP.
"""
from __future__ import annotations

import ipaddress
import threading
from typing import Mapping
from urllib.parse import urlsplit

import requests

from .base import ControllerRejectedError, ControllerUnreachableError, HookError

#: Seconds to wait for a TCP connection, and then for each answer. A resident is
#: waiting on the page, so we fail fast; slow controllers raise it per site
#: with the ``controller_timeout`` option.
CONNECT_TIMEOUT = 3.05
DEFAULT_READ_TIMEOUT = 8.0
_TRUE = {"1", "yes", "true", "on"}


def option_bool(options: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a yes/no site option."""
    value = (options.get(name) or "").strip().lower()
    return default if not value else value in _TRUE


def read_timeout(options: Mapping[str, str]) -> float:
    """The per-answer timeout of a site, ``controller_timeout`` seconds (1–30)."""
    try:
        value = float(options.get("controller_timeout") or DEFAULT_READ_TIMEOUT)
    except ValueError:
        value = DEFAULT_READ_TIMEOUT
    return min(max(value, 1.0), 30.0)


def valid_ip(value: str | None) -> str:
    """Return *value* as a normalised IPv4/IPv6 address, or ``""`` if it is not one."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return ""


def base_url(value: str | None, *, option: str) -> str:
    """Return a controller's ``scheme://host[:port][/path]`` without a trailing slash."""
    text = (value or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        # A configuration gap, not a controller fault: the plain HookError says so.
        got = "nothing" if not text else "an invalid URL"
        raise HookError(f"site option {option} must be the controller's https:// address (got {got}): "
                        f"set it with `flask --app portal sites set SITE_ID {option}=https://...`")
    return text


def host_of(url: str) -> str:
    """The ``host:port`` of *url*, safe for logs."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def send(session: requests.Session, method: str, url: str, *, what: str, timeout: float,
         **kwargs) -> requests.Response:
    """Send one request; timeouts and refused connections become ControllerUnreachableError."""
    host = host_of(url)
    try:
        return session.request(method, url, timeout=(CONNECT_TIMEOUT, timeout),
                               allow_redirects=False, **kwargs)
    except requests.exceptions.SSLError:
        raise ControllerUnreachableError(
            f"{what} at {host}: TLS certificate not trusted; install the controller's CA "
            f"or set the site option verify_tls=no"
        ) from None
    except requests.exceptions.Timeout:
        raise ControllerUnreachableError(
            f"{what} at {host} did not answer within {timeout:g} s: check that it is up and "
            f"reachable from the portal (VPN, firewall), or raise the site option controller_timeout"
        ) from None
    except requests.exceptions.RequestException as error:
        raise ControllerUnreachableError(
            f"{what} at {host} is unreachable ({type(error).__name__}): check the address, "
            f"port, VPN and firewall between the portal and the controller"
        ) from None


def server_error(what: str, url: str, response: requests.Response) -> ControllerRejectedError:
    """The error for an answer that is not the documented one (5xx, HTML, redirect...)."""
    host = host_of(url)
    code = response.status_code
    if 300 <= code < 400:
        hint = "it redirects; use the exact https:// address and port of the controller"
    elif code >= 500:
        hint = "the controller itself failed; check its health and logs"
    else:
        hint = "unexpected answer"
    return ControllerRejectedError(f"{what} at {host} answered HTTP {code}: {hint}",
                                   http_code=code, vendor_text=response.text[:500])


class SessionCache:
    """Logged-in sessions kept per controller and account, so each grant costs one call."""

    def __init__(self):
        self._entries: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, factory):
        """Return the entry of *key*, created by *factory()* on first use."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = factory()
            return entry

    def clear(self) -> None:
        """Forget every session (tests; key rotation of controller accounts)."""
        with self._lock:
            self._entries.clear()
