"""Gateway adapters, one module per vendor, found through an explicit registry.

Modules are imported lazily so that a broken optional dependency of one
vendor never takes the others down. The contract every adapter keeps, and
what the portal relies on, is written in :class:`hotspot_hooks.base.HotspotHook`.

Adding a vendor
---------------
Every file a new vendor touches, in order (``<vendor>`` is the registry key,
the module name and the URL segment of ``/hotspot/<vendor>`` at once):

1. ``hotspot_hooks/<vendor>.py``: the adapter class. Declare all four class
   attributes of :class:`~hotspot_hooks.base.HotspotHook` (``vendor``,
   ``server_side``, ``signed``, ``supports_deauth``); implement ``parse_arrival``
   and ``authorize`` with the protocol's exact signatures, ``replay_key`` when
   signed, ``deauthorize`` when it supports de-authorisation. A controller
   vendor uses ``controller_http`` for its HTTP calls, takes the controller
   site from site options only, and checks that the client is there before
   authorising (raise :class:`NotAClientError` otherwise).
2. ``hotspot_hooks/__init__.py``: its line in :data:`HOOKS` (and in
   :func:`calls_controller` if only some of its login modes call a controller).
3. ``tests/hotspot_hooks/recordings/<vendor>/<case>/arrival.json`` and
   ``expected.json``: recorded redirects, at least one successful arrival, fed
   to the contract suite ``tests/hotspot_hooks/test_contract.py`` (which needs no
   edit: it runs over every vendor in :data:`HOOKS`). Published test vectors go
   in ``tests/hotspot_hooks/test_vectors.py``, forgery and replay cases in
   ``test_signed_arrivals.py``.
4. A server-side vendor: a stand-in controller in
   ``tests/controllers/standins.py`` (a real HTTP server on loopback that also
   lists clients) and ``tests/controllers/test_<vendor>.py``: the grant, the
   client check and its refusal, bad credentials, timeout, 5xx, and the
   resident's journey through the portal.
5. ``portal/gateway_routes.py``: only if the vendor imposes its own arrival path
   (as UniFi does with ``/guest/s/<site>/``).
6. ``portal/operator_kit/templates/steps/<vendor>.txt`` (required: every kit has
   numbered steps), plus any configuration file template with its line in
   ``FILES`` and, for a special arrival path, ``arrival_url`` in
   ``portal/operator_kit/__init__.py``; ``tests/test_operator_kit.py``.
7. ``portal/site_secrets.py``: new per-site secret names in ``SECRET_NAMES``
   (anything else is a site option and needs no registration).
8. ``deploy/gateways/<vendor>.md``: the hook-in in operator language, linked from
   ``deploy/gateways/README.md``; an example row in ``deploy/sites.example.csv``.
9. ``README.md``: the vendor's row in the "Hooking in a gateway" table.
"""
from __future__ import annotations

from importlib import import_module

from .base import (  # noqa: F401  (re-exported for callers)
    Arrival,
    ArrivalError,
    ControllerAuthError,
    ControllerRejectedError,
    ControllerUnreachableError,
    Grant,
    HookError,
    HotspotHook,
    NotAClientError,
    SignatureError,
    SiteSettings,
    UnknownVendorError,
)

#: vendor key -> "module:Class"; the key is also the URL segment of /hotspot/<vendor>.
HOOKS: dict[str, str] = {
    "mikrotik": "hotspot_hooks.mikrotik:MikrotikHook",
    "opennds": "hotspot_hooks.opennds:OpenndsHook",
    "coovachilli": "hotspot_hooks.coovachilli:CoovachilliHook",
    "unifi": "hotspot_hooks.unifi:UnifiHook",
    "omada": "hotspot_hooks.omada:OmadaHook",
    "meraki": "hotspot_hooks.meraki:MerakiHook",
    "wifidog": "hotspot_hooks.wifidog:WifidogHook",
    "pfsense": "hotspot_hooks.pfsense:PfsenseHook",
}

_instances: dict[str, HotspotHook] = {}


def get_hook(vendor: str) -> HotspotHook:
    """Return the adapter registered for *vendor*."""
    try:
        return _instances[vendor]
    except KeyError:
        pass
    try:
        target = HOOKS[vendor]
    except KeyError:
        raise UnknownVendorError(
            f"unknown gateway vendor {vendor!r}; supported: {', '.join(sorted(HOOKS))}"
        ) from None
    module_name, class_name = target.split(":")
    hook = getattr(import_module(module_name), class_name)()
    _instances[vendor] = hook
    return hook


def calls_controller(hook: HotspotHook, settings: SiteSettings) -> bool:
    """True when ``hook.authorize`` grants server-side for a site with *settings*."""
    # MikroTik grants in the browser except in login mode "rest", where the portal logs in
    # over the router's REST API like a controller vendor.
    return hook.server_side or (hook.vendor == "mikrotik" and settings.login_mode == "rest")
