"""The contract every gateway adapter implements, and the records it returns.

An adapter never imports Flask and never touches Redis: it turns what a
gateway sent into an :class:`Arrival`, and a portal session into a
:class:`Grant`. The portal decides everything else (sites, sessions, events).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Protocol


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


class NotAClientError(HookError):
    """The controller does not list the session's device as a client of that AP or site.

    Raised by a server-side hook's client check; the portal shows the resident a
    refusal page and no authorize call is made.
    """


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
      (the original destination) if set;
    - ``"gateway"``: the router will ask the portal whether to let the client in, so
      the portal records the grant in Redis first (``portal.gateway_api.hand_over``).
      ``fields["protocol"]`` says how:

      - ``"authmon"`` (openNDS levels 3/4): ``fields`` has ``queue`` (the gateway's
        hash the router polls with), ``id`` (the client's rhid) and ``entry`` (the
        authmon line: rhid, minutes, rates, quotas); ``url`` is the client's
        destination, shown once the router has fetched the entry;
      - ``"wifidog"``: ``fields`` has ``token``, which the gateway's ``/auth`` call
        will present; ``url`` is the gateway's ``/wifidog/auth?token=…`` address the
        browser is sent to.

      Any other protocol is refused by the portal (a grant failure).

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
    """One gateway vendor. Registered in :data:`hotspot_hooks.HOOKS`.

    What the portal relies on (``tests/hotspot_hooks/test_contract.py`` checks
    every vendor for the declarations, and ``tests/controllers/`` the behaviour):

    - Every hook declares all four class attributes below explicitly; the portal
      reads them directly, never through ``getattr`` defaults.
    - ``parse_arrival`` never trusts the arrival: MACs are normalised (``urls.normalize_mac``),
      URLs made safe (``urls.safe_http_url``), and an IP is checked with :mod:`ipaddress`
      (``controller_http.valid_ip``) before anything is granted on it.
    - ``authorize`` only ever names the MAC/IP of the *arrival it is given* (the
      one held in the server-side portal session) and returns a :class:`Grant`.
      Controller failures raise the three ``Controller*Error`` classes, a refused
      client :class:`NotAClientError`, a configuration gap a plain :class:`HookError`.
    - **Client check** (``server_side`` hooks, and MikroTik in login mode ``rest``):
      before authorising, ``authorize`` asks the controller whether the arrival's
      MAC is a client of the arrival's AP/gateway on the site named by the
      registry (site options, never the arrival): UniFi ``stat/sta``, Omada's
      client list, RouterOS ``/ip/hotspot/host``. Not listed → raise
      :class:`NotAClientError` with no authorize call. The check failing
      (unreachable, refused, 5xx) raises the same ``Controller*Error`` as a failed
      grant and is handled the same way: the resident gets the "try again" page,
      the operator a log line; nothing is authorised unchecked.
    - The controller site comes from site options only (``unifi_site``,
      ``omada_site``), so a crafted arrival cannot pick another site.
    - The portal grants a session at most once: a second Connect on a session that
      was granted server-side shows the online page without calling the controller.
    """

    vendor: ClassVar[str]
    #: True when :meth:`authorize` talks to a controller (may raise Controller*Error and
    #: NotAClientError). MikroTik is False: only its ``rest`` login mode does (see
    #: :func:`hotspot_hooks.calls_controller`).
    server_side: ClassVar[bool]
    #: True when the arrival carries a signature or encryption that :meth:`parse_arrival`
    #: verifies. The portal then (1) adds the raw request to the parameters
    #: (``coovachilli.RAW_QUERY``/``REQUEST_URL``), (2) parses first with the fleet-wide
    #: settings and, once the site is known, again with the site's own settings, refusing
    #: the arrival if the second parse names another gateway, and (3) claims
    #: :meth:`replay_key` once in Redis, refusing a replay. A signed hook implements
    #: :meth:`replay_key`.
    signed: ClassVar[bool]
    #: True when :meth:`deauthorize` is implemented (ending a grant early).
    supports_deauth: ClassVar[bool]

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Turn the gateway's redirect parameters into an :class:`Arrival`.

        Raises :class:`ArrivalError` when required fields are missing and
        :class:`SignatureError` when a signature does not verify. ``settings``
        is given on a second call once the site is known, for vendors whose
        arrival is signed with a per-site secret.
        """

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Grant the client of *arrival* access for ``settings.minutes``."""

    # Only when ``signed`` is True:
    def replay_key(self, arrival: Arrival) -> str:
        """The arrival's nonce, refused the second time it is seen (``""``: nothing to claim)."""

    # Only when ``supports_deauth`` is True:
    def deauthorize(self, arrival: Arrival, settings: SiteSettings) -> None:
        """End the grant of the arrival's client on the controller."""
