"""A keyed blind index of a resident's contact, so a data-subject request can find their complaints.

The contact itself is stored sealed (portal/crypto.py); beside it the record keeps
HMAC-SHA256 of the *normalised* contact under a key derived from ``PORTAL_DEVICE_KEY``
(domain-separated, so it is not the device pseudonym). Without the key the index reveals
nothing; with it, staff can look up an exact contact but cannot list contacts. Changing
``PORTAL_DEVICE_KEY`` makes older indexes unreachable (as it does device pseudonyms).
"""
from __future__ import annotations

import hashlib
import hmac
import re

from flask import current_app

_DIGITS = re.compile(r"\D")


def normalise(contact: str) -> str:
    """One spelling per contact: e-mail lower-cased; a phone number as digits with 62 for a leading 0."""
    text = (contact or "").strip()
    if "@" in text:
        return text.lower()
    digits = _DIGITS.sub("", text)
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return digits or text.lower()


def of(contact: str, key: str | None = None) -> str:
    """The blind index of *contact* (hex), or "" for no contact."""
    normal = normalise(contact)
    if not normal:
        return ""
    key = key if key is not None else current_app.config["DEVICE_KEY"]
    derived = hmac.new(key.encode(), b"contact-index-v1", hashlib.sha256).digest()
    return hmac.new(derived, normal.encode(), hashlib.sha256).hexdigest()
