"""Pseudonymous device ids and encryption of personal data at rest.

- ``device_id``: a keyed hash of the MAC, so analytics and rate limits never
  hold the raw address (PDP law: MAC tied to a person is personal data).
- ``seal``/``unseal``: Fernet (AES-128-CBC + HMAC) under ``PORTAL_DATA_KEYS``;
  several keys, newest first, make rotation possible (``flask keys rotate``
  re-encrypts old records).
"""
from __future__ import annotations

import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

EXTENSION = "portal_crypto"


class Crypto:
    """Holds the device key and the data keys of one app."""

    def __init__(self, device_key: str, data_keys: str):
        self.device_key = device_key.encode()
        keys = [k.strip() for k in data_keys.split(",") if k.strip()]
        if not keys:
            raise RuntimeError("PORTAL_DATA_KEYS is empty: generate one with `flask keys new`")
        self.fernet = MultiFernet([Fernet(k) for k in keys])

    def device_id(self, mac: str) -> str:
        """Return the pseudonymous id of a device (16 hex chars), ``""`` without a MAC."""
        if not mac:
            return ""
        return hmac.new(self.device_key, mac.upper().encode(), hashlib.sha256).hexdigest()[:16]

    def seal(self, data: dict) -> str:
        """Encrypt a JSON-serialisable dict."""
        return self.fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()

    def unseal(self, token: str | bytes, *, ttl: int | None = None) -> dict:
        """Decrypt what :meth:`seal` produced; raises ``InvalidToken`` when it cannot."""
        if isinstance(token, str):
            token = token.encode()
        if ttl is None:
            return json.loads(self.fernet.decrypt(token))
        return json.loads(self.fernet.decrypt(token, ttl=ttl))

    def rotate(self, token: str | bytes) -> str:
        """Re-encrypt *token* under the newest key."""
        if isinstance(token, str):
            token = token.encode()
        return self.fernet.rotate(token).decode()


def init_app(app) -> None:
    """Build the app's Crypto from its configuration."""
    app.extensions[EXTENSION] = Crypto(app.config["DEVICE_KEY"], app.config["DATA_KEYS"])


def get_crypto() -> Crypto:
    """Return the current app's Crypto."""
    return current_app.extensions[EXTENSION]


__all__ = ["Crypto", "InvalidToken", "get_crypto", "init_app"]
