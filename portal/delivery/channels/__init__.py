"""Delivery channels: an explicit registry, imported lazily (libcloud's ``DRIVERS``)."""
from __future__ import annotations

from importlib import import_module

from .base import Channel, DeliveryError, PermanentError, Receipt, Route, TemporaryError

CHANNELS = {
    "lapor": "portal.delivery.channels.lapor:LaporChannel",
    "email": "portal.delivery.channels.email:EmailChannel",
    "webhook": "portal.delivery.channels.webhook:WebhookChannel",
    "outbox": "portal.delivery.channels.outbox:OutboxChannel",
}


class UnknownChannelError(ValueError):
    """The configuration names a channel type that does not exist."""


def build_channel(spec: dict) -> Channel:
    """Build a channel from its configuration (secrets already resolved)."""
    spec = dict(spec)
    kind = spec.pop("type", "")
    if kind not in CHANNELS:
        raise UnknownChannelError(f"unknown channel type {kind!r}; supported: {', '.join(sorted(CHANNELS))}")
    module, _, cls = CHANNELS[kind].partition(":")
    return getattr(import_module(module), cls)(**spec)


def erase_copies(channels, tracking: str) -> None:
    """Delete the copies of a complaint that channels keep on this machine (the local outbox)."""
    for channel in channels:
        erase = getattr(channel, "erase", None)
        if erase is not None:
            erase(tracking)


__all__ = ["CHANNELS", "Channel", "DeliveryError", "PermanentError", "Receipt", "Route", "TemporaryError",
           "UnknownChannelError", "build_channel", "erase_copies"]
