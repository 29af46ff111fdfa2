"""The development environment that ``make run`` keeps under ``var/``, shared with the CLI.

``make run`` creates development secrets once in ``var/dev-secrets.env`` and, without
``PORTAL_REDIS_URL``, runs the embedded Redis on ``var/redis/redis.sock`` with an outbox in
``var/outbox``. A ``flask --app portal …`` command in the same checkout uses the same ones, so
the README's commands work next to ``make run`` with no exports. Where there is no such
``var/`` (production), nothing here applies and the settings must come from the environment.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Mapping, MutableMapping

from cryptography.fernet import Fernet

from .embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE = "dev-secrets.env"
SECRET_KEYS = ("SECRET_KEY", "DEVICE_KEY", "DATA_KEYS")


def var_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``make run``'s var directory: ``PORTAL_VAR_DIR``, else the checkout's ``var/``."""
    return Path(environ.get("PORTAL_VAR_DIR") or ROOT / "var").resolve()


def create_secrets(var: Path) -> dict[str, str]:
    """Return the development secrets, created once (mode 600) in ``var/dev-secrets.env``."""
    path = var / SECRETS_FILE
    if not path.exists():
        var.mkdir(parents=True, exist_ok=True)
        lines = [
            f"PORTAL_SECRET_KEY={secrets.token_urlsafe(32)}",
            f"PORTAL_DEVICE_KEY={secrets.token_urlsafe(32)}",
            f"PORTAL_DATA_KEYS={Fernet.generate_key().decode()}",
        ]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
    return read_secrets(var) or {}


def read_secrets(var: Path) -> dict[str, str] | None:
    """The development secrets of *var* as ``PORTAL_*`` variables, or None where there are none."""
    try:
        text = (var / SECRETS_FILE).read_text()
    except OSError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def embedded_redis(var: Path) -> EmbeddedRedis:
    """The embedded Redis of *var* (not started)."""
    return EmbeddedRedis(var / "redis")


def embedded_defaults(var: Path) -> dict[str, str]:
    """Variables that go with the embedded Redis: a visible outbox channel under *var*."""
    return {"PORTAL_OUTBOX_DIR": str(var / "outbox")}


def fill_cli_config(config: MutableMapping, environ: Mapping[str, str] = os.environ,
                    notify=lambda message: None) -> bool:
    """Complete a CLI's configuration from ``make run``'s var/; False when not used.

    Only what the environment leaves unset is filled in. Without ``PORTAL_REDIS_URL`` the
    embedded Redis is used, and started (detached, for ``make run`` to find) if it is not
    running; *notify* is told when that happens. Raises RuntimeError if it cannot start.
    """
    if all(config.get(key) for key in SECRET_KEYS + ("REDIS_URL",)):
        return False  # fully configured (production, tests): var/ is not looked at
    var = var_dir(environ)
    found = read_secrets(var)
    if found is None:
        return False
    for key in SECRET_KEYS:
        if not config.get(key) and found.get(f"PORTAL_{key}"):
            config[key] = found[f"PORTAL_{key}"]
    if "PORTAL_VAR_DIR" not in environ:
        # The spool must be make run's, whatever directory the command is run from.
        config["VAR_DIR"] = str(var)
    if not config.get("REDIS_URL"):
        server = embedded_redis(var).start()
        if server.process is not None:
            notify(f"started make run's embedded Redis on {server.url} (it keeps running)")
        config["REDIS_URL"] = server.url
        for name, value in embedded_defaults(var).items():
            if name not in environ:
                config[name.removeprefix("PORTAL_")] = value
    return True
