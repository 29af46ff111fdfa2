"""Gateway adapters, one module per vendor, found through an explicit registry.

Modules are imported lazily so that a broken optional dependency of one
vendor never takes the others down.
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
