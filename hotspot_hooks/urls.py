"""URL checks shared by the adapters: continue URLs and gateway login URLs."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x20\x7f<>\"'`\\]")
_MAC = re.compile(r"^([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})[:-]?"
                  r"([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})[:-]?([0-9A-Fa-f]{2})$")


def safe_http_url(value: str | None, *, max_length: int = MAX_URL_LENGTH) -> str:
    """Return *value* if it is a plain http(s) URL we may send a browser to, else ``""``.

    Rejects other schemes (``javascript:``, ``data:``), control characters and
    quotes (header or markup injection), credentials in the authority and
    anything longer than *max_length*.
    """
    if not value or len(value) > max_length or _CONTROL.search(value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return ""
    return value


def normalize_mac(value: str | None) -> str:
    """Return *value* as ``AA:BB:CC:DD:EE:FF``, or ``""`` when it is not a MAC address."""
    match = _MAC.match((value or "").strip())
    return ":".join(match.groups()).upper() if match else ""
