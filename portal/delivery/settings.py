"""Delivery settings of one deployment, from the file named by ``PORTAL_DELIVERY_CONFIG``.

The file is JSON (or TOML when it ends in ``.toml``). Secrets never sit in
it: any key ending in ``_env`` names an environment variable, and the value
is read from there (``"token_env": "LAPOR_TOKEN"`` becomes ``token``)::

    {
      "retry": {"max": 8, "base": 30, "cap": 3600, "jitter": 0.5},
      "claim_idle": 120,
      "concurrency": 8,
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
values; a channel without ``when`` takes every complaint. ``concurrency``
(top level, or per channel) is how many deliveries a channel has in flight
at once, so one slow receiver does not hold up the others.

``PORTAL_OUTBOX_DIR`` adds a channel ``outbox`` (``channels/outbox.py``) that
takes every complaint, with or without this file.
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field

from .channels import Channel, build_channel
from .retry import Retry
from .signing import DEFAULT_WINDOW


DEFAULT_CONCURRENCY = 8
OUTBOX = "outbox"


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
    concurrency: dict[str, int] = field(default_factory=dict)  # channel name -> deliveries in flight

    def limit(self, name: str) -> int:
        """How many deliveries channel *name* may have in flight."""
        return self.concurrency.get(name, DEFAULT_CONCURRENCY)


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


def _concurrency(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        raise ConfigError(f"{where}: concurrency must be a whole number from 1 to 256")
    return value


def parse(data: dict, *, outbox_dir: str = "") -> Settings:
    """Build Settings from the parsed configuration (plus the outbox channel when *outbox_dir*)."""
    channels, names, concurrency = [], set(), {}
    default = _concurrency(data.get("concurrency", DEFAULT_CONCURRENCY), "delivery")
    raws = list(data.get("channels", []))
    if outbox_dir:
        raws.append({"name": OUTBOX, "type": "outbox", "directory": outbox_dir})
    for index, raw in enumerate(raws):
        spec = resolve_secrets(raw, f"channel #{index + 1}")
        name = spec.get("name") or spec.get("type")
        if name in names:
            raise ConfigError(f"channel name {name!r} is used twice"
                              + (" (PORTAL_OUTBOX_DIR adds one named outbox)" if name == OUTBOX else ""))
        names.add(name)
        concurrency[name] = _concurrency(spec.pop("concurrency", default), f"channel {name!r}")
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
        concurrency=concurrency,
    )


def load(app) -> Settings:
    """Return the app's delivery settings (parsed once per app)."""
    cached = app.extensions.get("portal_delivery")
    if cached is None:
        source = app.config.get("DELIVERY_CONFIG") or {}
        cached = parse(source if isinstance(source, dict) else read_file(source),
                       outbox_dir=app.config.get("OUTBOX_DIR") or "")
        app.extensions["portal_delivery"] = cached
    return cached
