"""What a grant may do: where it may send the browser, and which passwords may travel in it.

Every browser-side grant goes to a router address that the arrival named, and nothing in
an arrival is signed for MikroTik, WiFiDog or pfSense (and CoovaChilli without uamsecret).
So a grant's target is *pinned*: its host must be one of the site's ``router_hosts``
(:attr:`SiteSettings.router_hosts`): the site's explicit list of IP addresses, networks
and host names, by default the private, CGNAT and link-local ranges a hotspot router's
LAN address lives in. An unregistered gateway gets :data:`UNKNOWN_ROUTER_HOSTS` only.

Passwords: the page of a browser-side grant is readable by whoever opened it, so a
password in clear (PAP, or a XOR the resident can undo) is only ever the site's own
``password`` secret, and only when the site opts in with ``allow_pap=yes``. The
deployment-wide ``fleet_password`` leaves the server only as a CHAP response.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable
from urllib.parse import urlsplit

from .base import HookError, SiteSettings

#: Named ranges an operator may list in ``router_hosts``.
NETWORKS = {
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
    "cgnat": ("100.64.0.0/10",),
    "link-local": ("169.254.0.0/16", "fe80::/10"),
}
DEFAULT_ROUTER_HOSTS = ("private", "cgnat", "link-local")
UNKNOWN_ROUTER_HOSTS = ("private",)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*$")
_YES = ("yes", "true", "1", "on")


class GrantRefusedError(HookError):
    """The portal will not grant this way; ``reason`` picks the page the resident sees.

    Reasons: ``router_host`` (the grant would go to a host that is not the site's router),
    ``clear_password`` (a password would travel in clear), ``not_registered`` (the
    gateway must be registered for this kind of grant).
    """

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


def parse_router_hosts(text: str) -> tuple[tuple[str, ...], list[str]]:
    """Split an operator's ``router_hosts`` value; return ``(entries, rejected)``.

    An entry is a named range (``private``, ``cgnat``, ``link-local``), an IP address,
    a network (``10.8.0.0/16``) or an exact host name (``login.wifi``).
    """
    entries, rejected = [], []
    for raw in re.split(r"[\s,]+", text or ""):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry in NETWORKS or _HOSTNAME.match(entry) and not _looks_numeric(entry):
            entries.append(entry)
            continue
        try:
            entries.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            rejected.append(raw)
    return tuple(dict.fromkeys(entries)), rejected


def _looks_numeric(name: str) -> bool:
    # "10.1" or "192.168.1.1" are addresses (browsers read "10.1" as 10.0.0.1), never names.
    return bool(re.fullmatch(r"[0-9.]+", name))


def _networks(entries: Iterable[str]):
    for entry in entries:
        for network in NETWORKS.get(entry, (entry,)):
            try:
                yield ipaddress.ip_network(network, strict=False)
            except ValueError:
                continue  # a host name


def host_allowed(host: str, entries: Iterable[str]) -> bool:
    """Return True if *host* (a name or an address) is one of *entries*."""
    host = (host or "").strip().lower().strip("[]")
    if not host:
        return False
    entries = tuple(entries)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return not _looks_numeric(host) and host in entries
    return any(address.version == net.version and address in net for net in _networks(entries))


def host_of(target: str) -> str:
    """The host of a URL, or of ``host``/``host:port``."""
    if "://" not in target:
        target = f"http://{target}"
    try:
        return urlsplit(target).hostname or ""
    except ValueError:
        return ""


def pinned(target: str, settings: SiteSettings) -> str:
    """Return *target* (a URL or host[:port]) if its host is one of the site's router hosts.

    Raises :class:`GrantRefusedError` otherwise: the arrival named a host that is not the
    site's router, and the grant (with the resident's session and maybe a password) must
    not go there.
    """
    if not host_allowed(host_of(target), settings.router_hosts):
        raise GrantRefusedError(f"grant target {host_of(target)!r} is not one of the site's router_hosts",
                                reason="router_host")
    return target


def pap_allowed(settings: SiteSettings) -> bool:
    """True when the site opted in to sending its own password in clear (``allow_pap=yes``)."""
    return settings.options.get("allow_pap", "").strip().lower() in _YES


def clear_password(settings: SiteSettings, why: str) -> str:
    """Return the site's own password for a grant that carries it in clear, or refuse.

    Never the fleet password: whoever opens the grant page can read it. *why* names the
    situation for the operator's log line.
    """
    password = settings.secrets.get("password", "")
    if not pap_allowed(settings) or not password:
        raise GrantRefusedError(f"{why}: the password would travel in clear; enable CHAP on the router "
                                "(or set allow_pap=yes and the site's own password secret)", reason="clear_password")
    return password


def chap_password(settings: SiteSettings) -> str:
    """The password a CHAP response is computed from: the site's own, else the fleet's."""
    return settings.secrets.get("password", "") or settings.secrets.get("fleet_password", "")
