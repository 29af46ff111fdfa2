"""The contract every gateway adapter implements, and the records it returns.

An adapter never imports Flask and never touches Redis: it turns what a
gateway sent into an :class:`Arrival`, and a portal session into a
:class:`Grant`. The portal decides everything else (sites, sessions, events).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol


class HookError(Exception):
    """Base class of every error an adapter raises; the message is for operators."""


class ArrivalError(HookError):
    """The gateway's redirect lacked fields we need or carried malformed ones."""


class SignatureError(HookError):
    """A signed arrival failed verification (forged, altered or replayed)."""


class ControllerUnreachableError(HookError):
    """The controller timed out or refused the connection: check its address and firewall."""


class ControllerAuthError(HookError):
    """The controller rejected our credentials: update the site's controller account."""


class ControllerRejectedError(HookError):
    """The controller answered with an error; ``http_code`` and ``vendor_text`` are for logs."""

    def __init__(self, message: str, *, http_code: int | None = None, vendor_text: str = ""):
        super().__init__(message)
        self.http_code = http_code
        self.vendor_text = vendor_text[:500]


class UnknownVendorError(HookError, KeyError):
    """No adapter is registered under that name."""


@dataclass(frozen=True)
class Arrival:
    """One client arriving from a gateway, normalized across vendors.

    ``gateway_id`` identifies the site's gateway (MikroTik identity, openNDS
    gateway name, AP MAC...). ``client_mac``/``client_ip`` are raw personal
    data: they may only live in the short-lived portal session. ``extra``
    holds what the adapter needs later to grant access (login URL, CHAP
    challenge...), all JSON-serialisable strings.
    """

    vendor: str
    gateway_id: str
    client_mac: str = ""
    client_ip: str = ""
    original_url: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """How access is granted: the browser performs it, or the portal already did.

    ``kind`` is one of:

    - ``"redirect"``: send the browser to ``url`` with a 303 (works without JavaScript);
    - ``"form"``: the browser submits ``fields`` to ``url`` with ``method``;
    - ``"done"``: access was granted server-side; send the browser to ``url``
      (the original destination) if set.

    Example: ``Grant(kind="form", url="http://10.5.50.1/login", method="post",
    fields={"username": "guest", "password": "5f1c...", "dst": "http://example.com/"})``
    """

    kind: str
    url: str = ""
    method: str = "get"
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SiteSettings:
    """What a site's router configuration lets the portal ask for when granting.

    ``login_mode`` is vendor-specific (MikroTik: ``trial``, ``account``).
    ``secrets`` holds decrypted per-site secrets (uamsecret, faskey,
    controller credentials) and is never logged.
    """

    minutes: int = 60
    download_kbps: int = 0
    upload_kbps: int = 0
    quota_mb: int = 0
    login_mode: str = ""
    username: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    #: Hosts a browser-side grant may target (see hotspot_hooks.guards); the default is
    #: the rule for an unregistered gateway: private addresses only.
    router_hosts: tuple[str, ...] = ("private",)


class HotspotHook(Protocol):
    """One gateway vendor. Registered in :data:`hotspot_hooks.HOOKS`."""

    vendor: ClassVar[str]
    #: True when :meth:`authorize` talks to a controller (may raise Controller*Error).
    server_side: ClassVar[bool]

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Turn the gateway's redirect parameters into an :class:`Arrival`.

        Raises :class:`ArrivalError` when required fields are missing and
        :class:`SignatureError` when a signature does not verify. ``settings``
        is given on a second call once the site is known, for vendors whose
        arrival is signed with a per-site secret.
        """

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Grant the client of *arrival* access for ``settings.minutes``."""


def as_dict(value: Any) -> dict:
    """Return a plain dict of a mapping field, for JSON serialisation."""
    return dict(value or {})
