"""Delivery settings of one deployment, from the file named by ``PORTAL_DELIVERY_CONFIG``.

The file is JSON (or TOML when it ends in ``.toml``). Secrets never sit in
it: any key ending in ``_env`` names an environment variable, and the value
is read from there (``"token_env": "LAPOR_TOKEN"`` becomes ``token``)::

    {
      "retry": {"max": 8, "base": 30, "cap": 3600, "jitter": 0.5},
      "claim_idle": 120,
      "callback": {"secret_env": "LAPOR_CALLBACK_SECRET", "window": 300},
      "channels": [
        {"name": "lapor", "type": "lapor", "url": "https://…/api/laporan", "token_env": "LAPOR_TOKEN"},
        {"name": "desk", "type": "email", "host": "smtp.baliprov.go.id", "sender": "portal@…",
         "to": ["inspektorat@…"], "when": {"category": ["kesehatan"]}},
        {"name": "kasus", "type": "webhook", "url": "https://…/hook", "secret_env": "KASUS_SECRET",
         "when": {"kabupaten_kode": ["51.71"]}}
      ]
    }

``when`` routes a channel: every listed field must hold one of the listed
values; a channel without ``when`` takes every complaint.
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field

from .channels import Channel, build_channel
from .retry import Retry
from .signing import DEFAULT_WINDOW


class ConfigError(Exception):
    """The delivery configuration is unreadable or incomplete; the message says what to fix."""


@dataclass
class Settings:
    """Everything the worker and the callback endpoint need to know about delivery."""

    channels: list[Channel] = field(default_factory=list)
    retry: Retry = field(default_factory=Retry)
    claim_idle: float = 120.0     # seconds before another worker takes a silent worker's message
    block: float = 1.0            # seconds a read waits for new messages (bounds SIGTERM latency)
    spool_every: float = 5.0      # seconds between spool replays
    purge_every: float = 3600.0   # seconds between retention purges
    callback_secret: str = ""
    callback_window: int = DEFAULT_WINDOW


def resolve_secrets(spec: dict, where: str) -> dict:
    """Replace every ``<key>_env`` entry of *spec* by ``<key>`` read from the environment."""
    resolved = {}
    for key, value in spec.items():
        if key.endswith("_env"):
            if value not in os.environ:
                raise ConfigError(f"{where}: environment variable {value} (from {key}) is not set")
            resolved[key[:-4]] = os.environ[value]
        else:
            resolved[key] = value
    return resolved


def read_file(path: str) -> dict:
    """Parse the configuration file at *path*."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle) if path.endswith(".toml") else json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"PORTAL_DELIVERY_CONFIG {path}: {error}") from None


def parse(data: dict) -> Settings:
    """Build Settings from the parsed configuration."""
    channels, names = [], set()
    for index, raw in enumerate(data.get("channels", [])):
        spec = resolve_secrets(raw, f"channel #{index + 1}")
        name = spec.get("name") or spec.get("type")
        if name in names:
            raise ConfigError(f"channel name {name!r} is used twice")
        names.add(name)
        try:
            channels.append(build_channel(dict(spec, name=name)))
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"channel {name!r}: {error}") from None
    callback = resolve_secrets(data.get("callback", {}), "callback")
    try:
        retry = Retry(**data.get("retry", {}))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"retry: {error}") from None
    return Settings(
        channels=channels, retry=retry,
        claim_idle=float(data.get("claim_idle", 120)), block=float(data.get("block", 1.0)),
        spool_every=float(data.get("spool_every", 5)), purge_every=float(data.get("purge_every", 3600)),
        callback_secret=callback.get("secret", ""), callback_window=int(callback.get("window", DEFAULT_WINDOW)),
    )


def load(app) -> Settings:
    """Return the app's delivery settings (parsed once per app)."""
    cached = app.extensions.get("portal_delivery")
    if cached is None:
        source = app.config.get("DELIVERY_CONFIG") or {}
        cached = parse(source if isinstance(source, dict) else read_file(source))
        app.extensions["portal_delivery"] = cached
    return cached
