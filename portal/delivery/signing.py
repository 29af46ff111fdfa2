"""HMAC-SHA256 signatures over a timestamp and a body, with a replay window.

Used both ways: the webhook channel signs what it sends, and the callback
endpoint verifies what receivers send back. The signed string is
``<unix seconds>.<raw body>``; headers::

    X-Portal-Timestamp: 1764375000
    X-Portal-Signature: v1=<hex digest>

A receiver recomputes the digest with the shared secret, compares in
constant time and refuses timestamps outside the window (default 300 s).
"""
from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Portal-Timestamp"
SIGNATURE_HEADER = "X-Portal-Signature"
DEFAULT_WINDOW = 300


class SignatureError(Exception):
    """The signature is missing, wrong, or outside the replay window."""


def digest(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``<timestamp>.<body>`` under *secret*."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """Return the headers that sign *body*."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: "v1=" + digest(secret, timestamp, body)}


def verify(secret: str, headers, body: bytes, *, window: int = DEFAULT_WINDOW, now: float | None = None) -> int:
    """Check the signature headers of *body*; return the timestamp or raise SignatureError."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not secret:
        raise SignatureError("no secret configured")
    if not (timestamp.isascii() and timestamp.isdigit()) or not signature.startswith("v1="):
        raise SignatureError("missing or malformed signature headers")
    expected = "v1=" + digest(secret, timestamp, body)
    # Bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError("bad signature")
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        raise SignatureError("timestamp outside the replay window")
    return int(timestamp)
